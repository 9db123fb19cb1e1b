// One function per KeeperAction (libautofailover/keeper_transitions.h). The
// table decides which one runs; these only carry it out against the local
// Postgres. Each throws on failure; the loop logs it and retries next period.
#pragma once

#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"
#include "keeper/local_postgres.h"
#include "keeper/monitor_link.h"
#include "libautofailover/keeper_transitions.h"

#include <functional>
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

void run_action(KeeperAction action, ActionContext& ctx);

// Shared with the loop's supervision.
// Settings and pg_hba lines for this node and the group it belongs to; reloads when they changed.
void ensure_replication_access(ActionContext& ctx, bool reload_if_changed);
// On a primary: one physical slot per other node, stale autofailover slots dropped.
void maintain_replication_slots(ActionContext& ctx);
// Standby setup while stopped: standby.signal + primary_conninfo/slot in postgresql.auto.conf.
void write_standby_setup(ActionContext& ctx, const std::string& host, int port, bool with_slot);

// On a running standby: drops the inactive autofailover slots (a standby keeps none).
void drop_standby_slots(ActionContext& ctx);

// On a running standby that should stream from the primary: re-point primary_conninfo /
// primary_slot_name when someone or something changed them. Returns true when it did.
bool ensure_following_primary(ActionContext& ctx);

// A running standby whose server log shows it can never follow the primary with this
// data directory (`reason`, from unfollowable_reason(): its WAL is gone, e.g. its slot
// exceeded max_slot_wal_keep_size while it was away; or its history diverged):
// re-initialized from a fresh base backup. A diverged directory is kept for the DBA.
void rebuild_unfollowable_standby(ActionContext& ctx, const std::string& reason);

// parse_synchronous_standby_names lives next to its generator in libautofailover/replication_names.h.

}  // namespace autofailover::keeper
