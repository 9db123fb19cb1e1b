// The keeper's own safety decisions about its local Postgres, as data: restart a crash within a budget,
// hide a crashed primary from the monitor while that budget lasts, stop a Postgres that must not run.
// Pure (no I/O): KeeperLoop observes, calls these and executes what they return (docs/keeper.md).
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/node_state.h"

#include <chrono>
#include <optional>
#include <string>

namespace autofailover {

// Postgres must be up in this state (as a primary or as a standby).
bool postgres_must_run(NodeState state);
// A running Postgres would be a second primary or a stale one in this state.
bool postgres_must_be_stopped(NodeState state);
// Postgres runs as a standby in this state.
bool is_standby_state(NodeState state);

// How many restarts of a crashed Postgres the keeper tries, within how long, before it tells the monitor.
struct RestartBudget {
    int max_retries = 3;
    std::chrono::milliseconds failure_timeout{5000};
};

struct SupervisionView {
    NodeState state = NodeState::Init;  // current state, equal to the goal (the keeper supervises only then)
    bool running = false;               // the postmaster answers
    bool data_dir_exists = false;
    bool postmaster_unreaped = false;   // the postmaster died but its process is not reaped yet
    bool standby_signal = false;        // standby.signal is in the data directory
    int restart_attempts = 0;           // since Postgres was last seen running
    // Since Postgres was first seen down in a state where it must run (none: it was not).
    std::optional<std::chrono::milliseconds> down_for;
    RestartBudget budget;
};

enum class SupervisionAction {
    Nothing,          // Postgres is as the state wants it
    StopPostgres,     // it runs but must not
    RestartPostgres,  // it must run and the budget allows one more try
    WaitForReap,      // it must run, but the dead postmaster still holds its pid: no attempt counted
    ReportDown,       // the budget is spent: the monitor hears pg_is_running = false
};

struct SupervisionPlan {
    SupervisionAction action = SupervisionAction::Nothing;
    // RestartPostgres of a standby whose standby.signal is missing: write the standby setup first, so the
    // data directory can never come up as a second primary.
    bool standby_setup_first = false;
    // ReportDown, a whole failure_timeout later still down: a fresh budget starts (another round of restarts).
    bool renew_budget = false;
    std::string reason;
};

SupervisionPlan plan_supervision(const SupervisionView& view);

// What the keeper tells the monitor of its Postgres (pg_is_running): a primary whose Postgres just crashed is
// restarted first, and reported down only once the budget is spent, so one crash does not start a failover.
bool report_postgres_running(const SupervisionView& view);

}  // namespace autofailover
