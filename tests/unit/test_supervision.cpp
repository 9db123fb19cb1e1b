// The keeper's own safety decisions (libautofailover/supervision.h): restart a crashed Postgres within a budget,
// hide a crashed primary from the monitor meanwhile, stop a Postgres that must not run, never start a standby's
// data directory without its standby setup.
#include "libautofailover/supervision.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace std::chrono_literals;
using S = NodeState;
using A = SupervisionAction;

namespace {

SupervisionView down(S state, int attempts = 0, std::chrono::milliseconds for_ = 0ms) {
    SupervisionView v;
    v.state = state;
    v.running = false;
    v.data_dir_exists = true;
    v.standby_signal = true;
    v.restart_attempts = attempts;
    v.down_for = for_;
    return v;
}

}  // namespace

TEST_CASE("the state classes partition what the keeper does with Postgres", "[supervision]") {
    for (S s : all_node_states()) {
        INFO(to_string(s));
        CHECK_FALSE((postgres_must_run(s) && postgres_must_be_stopped(s)));
        if (is_standby_state(s)) {
            CHECK(postgres_must_run(s));
            CHECK_FALSE(is_writable(s));
        }
        if (is_writable(s)) CHECK(postgres_must_run(s));
    }
    CHECK(postgres_must_be_stopped(S::Demoted));
    CHECK(postgres_must_be_stopped(S::Draining));
    CHECK(postgres_must_be_stopped(S::DemoteTimeout));
    CHECK_FALSE(postgres_must_run(S::Maintenance));
    CHECK_FALSE(postgres_must_be_stopped(S::Maintenance));  // the DBA's: neither started nor stopped
    CHECK(is_standby_state(S::Secondary));
    CHECK(is_standby_state(S::ReportLsn));
    CHECK_FALSE(is_standby_state(S::Primary));
}

TEST_CASE("a Postgres that runs where it must not is stopped", "[supervision]") {
    for (S s : {S::Demoted, S::DemoteTimeout, S::Draining, S::PrepareMaintenance, S::Dropped}) {
        SupervisionView v;
        v.state = s;
        v.running = true;
        v.data_dir_exists = true;
        CHECK(plan_supervision(v).action == A::StopPostgres);
    }
}

TEST_CASE("nothing to do while Postgres is as the state wants it", "[supervision]") {
    SupervisionView v;
    v.state = S::Primary;
    v.running = true;
    v.data_dir_exists = true;
    CHECK(plan_supervision(v).action == A::Nothing);
    v.state = S::Maintenance;  // whatever the DBA does to it
    CHECK(plan_supervision(v).action == A::Nothing);
    v.running = false;
    CHECK(plan_supervision(v).action == A::Nothing);
    SupervisionView no_data = down(S::Secondary);
    no_data.data_dir_exists = false;  // nothing to start: a rebuild is the transition's business
    CHECK(plan_supervision(no_data).action == A::Nothing);
}

TEST_CASE("a running Postgres is never stopped or restarted in a state where it must run", "[supervision]") {
    for (S s : all_node_states()) {
        if (!postgres_must_run(s)) continue;
        INFO(to_string(s));
        SupervisionView v = down(s, 5, 60000ms);  // even with a spent budget and a missing standby.signal
        v.running = true;
        v.standby_signal = false;
        CHECK(plan_supervision(v).action == A::Nothing);
        CHECK(report_postgres_running(v));
    }
}

TEST_CASE("a crashed Postgres is restarted until the budget is spent, then reported down", "[supervision]") {
    CHECK(plan_supervision(down(S::Primary, 0, 100ms)).action == A::RestartPostgres);
    CHECK(plan_supervision(down(S::Primary, 2, 4900ms)).action == A::RestartPostgres);
    CHECK(plan_supervision(down(S::Primary, 3, 1s)).action == A::ReportDown);      // attempts spent
    CHECK(plan_supervision(down(S::Primary, 1, 5000ms)).action == A::ReportDown);  // time spent
    const auto plan = plan_supervision(down(S::Secondary, 1, 200ms));
    CHECK(plan.action == A::RestartPostgres);
    CHECK(plan.reason.find("restart attempt 2/3") != std::string::npos);
}

TEST_CASE("a fresh budget starts only a whole failure_timeout after the first was spent", "[supervision]") {
    CHECK_FALSE(plan_supervision(down(S::Primary, 3, 9999ms)).renew_budget);
    const auto plan = plan_supervision(down(S::Primary, 3, 10000ms));
    CHECK(plan.action == A::ReportDown);
    CHECK(plan.renew_budget);
}

TEST_CASE("no attempt is spent while the dead postmaster is not reaped", "[supervision]") {
    auto v = down(S::Secondary, 0, 50ms);
    v.postmaster_unreaped = true;
    CHECK(plan_supervision(v).action == A::WaitForReap);
    v.restart_attempts = 3;  // but a spent budget is reported whatever the process table says
    CHECK(plan_supervision(v).action == A::ReportDown);
}

TEST_CASE("a standby without standby.signal gets its standby setup before it starts", "[supervision]") {
    auto v = down(S::Secondary);
    v.standby_signal = false;
    CHECK(plan_supervision(v).standby_setup_first);
    v.standby_signal = true;
    CHECK_FALSE(plan_supervision(v).standby_setup_first);
    auto primary = down(S::Primary);
    primary.standby_signal = false;  // a primary has none, and must not get one
    CHECK_FALSE(plan_supervision(primary).standby_setup_first);
}

TEST_CASE("a crashed primary is reported running while its restart budget lasts", "[supervision]") {
    CHECK(report_postgres_running(down(S::Primary, 1, 1s)));
    CHECK_FALSE(report_postgres_running(down(S::Primary, 3, 1s)));
    CHECK_FALSE(report_postgres_running(down(S::Primary, 0, 5s)));
    CHECK_FALSE(report_postgres_running(down(S::Secondary, 0, 1s)));  // a standby hides nothing
    auto not_yet_down = down(S::Primary);
    not_yet_down.down_for.reset();  // not seen down in its state yet (e.g. mid-transition)
    CHECK_FALSE(report_postgres_running(not_yet_down));
    auto up = down(S::Secondary);
    up.running = true;
    CHECK(report_postgres_running(up));
}
