// The keeper's transition table: for each (current state -> goal state) the
// monitor may assign, the action that gets the local node there. A test proves
// every goal the decision function can assign is reachable from every state.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/node_state.h"

#include <optional>
#include <string_view>
#include <vector>

namespace autofailover {

// What the keeper does on an edge. The keeper implements one function per action.
enum class KeeperAction {
    None,              // only record the new state
    InitPrimary,       // initdb if PGDATA is empty, start as a primary, no synchronous replication
    InitStandby,       // pg_basebackup from the primary through the node's slot, start as a standby
    RewindOrReinit,    // old primary: pg_rewind (crash recovery first), else fresh base backup; start as standby
    FollowPrimary,     // point primary_conninfo at the current primary (reload or restart), keep running
    StopReplication,   // cut the walreceiver (empty primary_conninfo) so the old primary loses its standby; report LSN
    FastForward,       // stream from the most advanced standby up to the target LSN, then stop streaming
    Promote,           // pg_ctl promote, wait until writable, no synchronous replication yet
    DisableSyncRep,    // synchronous_standby_names = '' (keeps running)
    ApplySettings,     // synchronous_standby_names from the monitor, reload
    EnableSyncRep,     // ApplySettings, then wait until the sync standbys hold the current LSN
    StopPostgres,      // checkpoint + fast shutdown: connected standbys receive all WAL first
    Fence,             // immediate stop: this primary may be cut off and must not take writes
    ResumeAsPrimary,   // start Postgres again as the primary (a demotion that turned out unneeded)
    ReleaseForMaintenance,  // stop supervising Postgres (the DBA owns it)
    DropNode,          // stop Postgres and forget the registration
};

std::string_view to_string(KeeperAction action);

struct KeeperTransition {
    NodeState from;
    NodeState to;
    KeeperAction action;
    std::string_view description;
};

const std::vector<KeeperTransition>& keeper_transitions();
const KeeperTransition* find_keeper_transition(NodeState from, NodeState to);
// Shortest chain of table edges from `from` to `to` (empty when from == to);
// nullopt when the table has no path.
std::optional<std::vector<KeeperTransition>> keeper_path(NodeState from, NodeState to);

}  // namespace autofailover
