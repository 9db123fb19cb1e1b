#include "libautofailover/supervision.h"

namespace autofailover {

bool postgres_must_run(NodeState s) {
    switch (s) {
        case NodeState::Single:
        case NodeState::WaitPrimary:
        case NodeState::Primary:
        case NodeState::JoinPrimary:
        case NodeState::ApplySettings:
        case NodeState::Catchingup:
        case NodeState::Secondary:
        case NodeState::PreparePromotion:
        case NodeState::StopReplication:
        case NodeState::ReportLsn:
        case NodeState::FastForward:
        case NodeState::JoinSecondary:
        case NodeState::WaitMaintenance:
            return true;
        default:
            return false;
    }
}

bool postgres_must_be_stopped(NodeState s) {
    return s == NodeState::Demoted || s == NodeState::DemoteTimeout || s == NodeState::Draining ||
           s == NodeState::PrepareMaintenance || s == NodeState::Dropped;
}

bool is_standby_state(NodeState s) { return postgres_must_run(s) && !is_writable(s) && !belongs_to_primary(s); }

namespace {

bool budget_spent(const SupervisionView& v) {
    return v.restart_attempts >= v.budget.max_retries || (v.down_for && *v.down_for >= v.budget.failure_timeout);
}

std::string attempts(const SupervisionView& v) {
    return std::to_string(v.restart_attempts) + "/" + std::to_string(v.budget.max_retries);
}

}  // namespace

SupervisionPlan plan_supervision(const SupervisionView& v) {
    SupervisionPlan plan;
    const std::string state(to_string(v.state));
    if (postgres_must_be_stopped(v.state) && v.running) {
        plan.action = SupervisionAction::StopPostgres;
        plan.reason = "Postgres runs but must not in state " + state;
        return plan;
    }
    if (!postgres_must_run(v.state) || v.running || !v.data_dir_exists) return plan;
    if (budget_spent(v)) {
        plan.action = SupervisionAction::ReportDown;
        plan.renew_budget = v.down_for && *v.down_for >= 2 * v.budget.failure_timeout;
        plan.reason = "Postgres is down after " + attempts(v) + " restart attempts: the monitor is told";
        return plan;
    }
    if (v.postmaster_unreaped) {
        plan.action = SupervisionAction::WaitForReap;
        plan.reason = "the postmaster died and its process is not reaped yet: Postgres would refuse to start";
        return plan;
    }
    plan.action = SupervisionAction::RestartPostgres;
    plan.standby_setup_first = is_standby_state(v.state) && !v.standby_signal;
    plan.reason = "Postgres is not running in state " + state + "; restart attempt " +
                  std::to_string(v.restart_attempts + 1) + "/" + std::to_string(v.budget.max_retries);
    return plan;
}

bool report_postgres_running(const SupervisionView& v) {
    if (v.running) return true;
    if (!v.down_for || !is_writable(v.state)) return false;
    return !budget_spent(v);
}

}  // namespace autofailover
