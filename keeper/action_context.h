// What an edge action (keeper/transition_actions.h) works with, and the small
// steps the action files share: SQL settings, waiting with reports, the
// monitor's primary.
#pragma once

#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"
#include "keeper/local_postgres.h"
#include "keeper/monitor_link.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

struct ActionContext {
    const KeeperConfig& config;
    KeeperState& state;
    LocalPostgres& pg;
    const NodeAssignment& assignment;     // the monitor's latest answer
    const std::vector<OtherNode>& others;  // get_other_nodes(), latest
    std::function<void()> tick;           // keeps reporting while a long step runs
    std::function<bool()> cancelled;      // true once the keeper is asked to stop
    std::function<void()> persist;        // writes state.json now (atomically)
};

// Throws KeeperError(LocalPostgres, message).
[[noreturn]] void fail(const std::string& message);

// ALTER SYSTEM SET name TO value (quoted by the server), or RESET when value is nullopt.
void alter_system(LocalPostgres& pg, const std::string& name, const std::optional<std::string>& value);

// Polls `done` every local_check_interval, ticking the monitor report every poll_period,
// until true (returns true) or timeout (false). Throws once the keeper is asked to stop.
bool wait_until(ActionContext& ctx, std::chrono::milliseconds timeout, const std::function<bool()>& done);

// "<n>ms" since start, for log lines.
std::string ms_since(std::chrono::steady_clock::time_point start);

bool in_recovery(LocalPostgres& pg);

// Starts Postgres when it is down and waits until it takes connections.
void ensure_running(ActionContext& ctx);

// The monitor's primary host; throws KeeperError(MonitorError) while it names none.
const std::string& require_primary(ActionContext& ctx);

// Writes state.json now (when the loop gave a writer).
void persist(ActionContext& ctx);

// The data directory takes writes now: a later rejoin must pg_rewind it again, never
// discard it on the word of a rewind of an earlier life (rejoin_needs_base_backup).
void forget_failed_rejoin(ActionContext& ctx);

}  // namespace autofailover::keeper
