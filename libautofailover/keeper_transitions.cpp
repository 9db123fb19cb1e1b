#include "libautofailover/keeper_transitions.h"

#include <deque>
#include <map>

namespace autofailover {

std::string_view to_string(KeeperAction action) {
    switch (action) {
        case KeeperAction::None: return "none";
        case KeeperAction::InitPrimary: return "init_primary";
        case KeeperAction::InitStandby: return "init_standby";
        case KeeperAction::RewindOrReinit: return "rewind_or_reinit";
        case KeeperAction::FollowPrimary: return "follow_primary";
        case KeeperAction::StopReplication: return "stop_replication";
        case KeeperAction::FastForward: return "fast_forward";
        case KeeperAction::Promote: return "promote";
        case KeeperAction::DisableSyncRep: return "disable_sync_rep";
        case KeeperAction::ApplySettings: return "apply_settings";
        case KeeperAction::EnableSyncRep: return "enable_sync_rep";
        case KeeperAction::StopPostgres: return "stop_postgres";
        case KeeperAction::Fence: return "fence";
        case KeeperAction::ResumeAsPrimary: return "resume_as_primary";
        case KeeperAction::ReleaseForMaintenance: return "release_for_maintenance";
        case KeeperAction::DropNode: return "drop_node";
    }
    return "unknown";
}

namespace {

using S = NodeState;
using A = KeeperAction;

std::vector<KeeperTransition> build_table() {
    std::vector<KeeperTransition> t = {
        // Registration.
        {S::Init, S::Single, A::InitPrimary, "first node of the group: initdb and start as a primary"},
        {S::Init, S::WaitStandby, A::None, "wait until the primary accepts a new standby"},
        {S::Init, S::ReportLsn, A::None, "alone with candidate_priority 0: wait for a settings change"},
        {S::ReportLsn, S::Single, A::InitPrimary, "alone and now a candidate: start as a primary (initdb if empty)"},

        // Standby life cycle.
        {S::WaitStandby, S::Catchingup, A::InitStandby, "the primary accepts this standby: base backup, then stream"},
        {S::Catchingup, S::Secondary, A::None, "caught up with the primary: a failover candidate"},
        {S::Secondary, S::Catchingup, A::FollowPrimary, "no longer a candidate; keep streaming from the primary"},
        {S::Secondary, S::JoinSecondary, A::FollowPrimary, "re-point streaming at the new primary"},
        {S::Catchingup, S::JoinSecondary, A::FollowPrimary, "re-point streaming at the new primary"},
        {S::JoinSecondary, S::Catchingup, A::None, "streaming from the new primary"},
        {S::ReportLsn, S::Catchingup, A::FollowPrimary, "election over: stream from the new primary"},
        {S::Demoted, S::Catchingup, A::RewindOrReinit, "old primary rejoins: pg_rewind (or base backup), then stream"},

        // Election.
        {S::Secondary, S::ReportLsn, A::StopReplication, "primary lost: freeze WAL reception and report the LSN"},
        {S::Catchingup, S::ReportLsn, A::StopReplication, "primary lost: freeze WAL reception and report the LSN"},
        {S::JoinSecondary, S::ReportLsn, A::StopReplication, "primary lost: freeze WAL reception and report the LSN"},
        {S::WaitMaintenance, S::ReportLsn, A::StopReplication, "primary lost: freeze WAL reception and report the LSN"},
        {S::PreparePromotion, S::ReportLsn, A::StopReplication, "promotion revoked: freeze and report the LSN"},
        {S::FastForward, S::ReportLsn, A::StopReplication, "promotion revoked: freeze and report the LSN"},
        {S::ReportLsn, S::FastForward, A::FastForward, "elected but behind: fetch the missing WAL from a standby"},
        {S::ReportLsn, S::PreparePromotion, A::None, "elected with the most advanced WAL"},
        {S::FastForward, S::PreparePromotion, A::None, "holds the most advanced WAL now"},
        {S::PreparePromotion, S::WaitPrimary, A::Promote, "promote: the new primary, without synchronous replication yet"},
        {S::PreparePromotion, S::StopReplication, A::StopReplication, "cut replication before promotion"},
        {S::StopReplication, S::WaitPrimary, A::Promote, "promote: the new primary, without synchronous replication yet"},

        // Switchover.
        {S::Secondary, S::PreparePromotion, A::None, "switchover candidate: keep streaming until the primary drained"},
        {S::PreparePromotion, S::Catchingup, A::FollowPrimary, "switchover aborted: keep following the primary"},
        {S::Primary, S::Draining, A::StopPostgres, "switchover: checkpoint and fast shutdown, standbys get all WAL"},
        {S::WaitPrimary, S::Draining, A::StopPostgres, "switchover: checkpoint and fast shutdown, standbys get all WAL"},
        {S::ApplySettings, S::Draining, A::StopPostgres, "switchover: checkpoint and fast shutdown, standbys get all WAL"},
        {S::JoinPrimary, S::Draining, A::StopPostgres, "switchover: checkpoint and fast shutdown, standbys get all WAL"},
        {S::Draining, S::Demoted, A::StopPostgres, "switchover done: stay stopped until rejoining as a standby"},
        {S::Draining, S::WaitPrimary, A::ResumeAsPrimary, "switchover aborted: start again as the primary"},

        // (A resumed primary reaches primary only through wait_primary -> primary,
        // whose EnableSyncRep waits until the sync standbys hold everything: commits
        // it acknowledged alone before stopping must not count as synchronous.)

        // Failover of the old primary.
        {S::Single, S::Demoted, A::Fence, "declared failed: stop now, another node takes over"},
        {S::WaitPrimary, S::Demoted, A::Fence, "declared failed: stop now, another node takes over"},
        {S::Primary, S::Demoted, A::Fence, "declared failed: stop now, another node takes over"},
        {S::ApplySettings, S::Demoted, A::Fence, "declared failed: stop now, another node takes over"},
        {S::JoinPrimary, S::Demoted, A::Fence, "declared failed: stop now, another node takes over"},
        {S::Primary, S::DemoteTimeout, A::Fence, "network partition: stop taking writes"},
        {S::WaitPrimary, S::DemoteTimeout, A::Fence, "network partition: stop taking writes"},
        {S::ApplySettings, S::DemoteTimeout, A::Fence, "network partition: stop taking writes"},
        {S::JoinPrimary, S::DemoteTimeout, A::Fence, "network partition: stop taking writes"},
        {S::DemoteTimeout, S::Demoted, A::StopPostgres, "fenced primary was replaced: stay stopped"},
        {S::DemoteTimeout, S::WaitPrimary, A::ResumeAsPrimary, "fenced, but nobody was promoted: start again"},
        {S::DemoteTimeout, S::Single, A::ResumeAsPrimary, "fenced, but nobody was promoted: start again"},

        // Primary replication settings.
        {S::Single, S::WaitPrimary, A::None, "a standby is joining"},
        {S::WaitPrimary, S::Primary, A::EnableSyncRep, "a quorum standby caught up: synchronous replication on"},
        {S::ApplySettings, S::Primary, A::EnableSyncRep, "new synchronous_standby_names applied"},
        {S::JoinPrimary, S::Primary, A::EnableSyncRep, "legacy state: synchronous replication on"},
        {S::Primary, S::ApplySettings, A::ApplySettings, "apply the new synchronous_standby_names"},
        {S::Primary, S::WaitPrimary, A::DisableSyncRep, "no healthy quorum standby: synchronous replication off"},
        {S::ApplySettings, S::WaitPrimary, A::DisableSyncRep, "no healthy quorum standby: synchronous replication off"},
        {S::JoinPrimary, S::WaitPrimary, A::DisableSyncRep, "no healthy quorum standby: synchronous replication off"},
        {S::WaitPrimary, S::Single, A::DisableSyncRep, "every standby was removed"},
        {S::Primary, S::Single, A::DisableSyncRep, "every standby was removed"},
        {S::ApplySettings, S::Single, A::DisableSyncRep, "every standby was removed"},
        {S::JoinPrimary, S::Single, A::DisableSyncRep, "every standby was removed"},

        // Maintenance.
        {S::Secondary, S::WaitMaintenance, A::None, "wait until the primary no longer counts on this standby"},
        {S::Catchingup, S::WaitMaintenance, A::None, "wait until the primary no longer counts on this standby"},
        {S::WaitMaintenance, S::Maintenance, A::ReleaseForMaintenance, "the DBA owns Postgres now"},
        {S::Secondary, S::Maintenance, A::ReleaseForMaintenance, "the DBA owns Postgres now"},
        {S::Catchingup, S::Maintenance, A::ReleaseForMaintenance, "the DBA owns Postgres now"},
        {S::WaitMaintenance, S::Catchingup, A::FollowPrimary, "maintenance cancelled: keep streaming"},
        {S::Maintenance, S::Catchingup, A::RewindOrReinit, "maintenance over: rejoin as a standby"},
        {S::Primary, S::PrepareMaintenance, A::StopPostgres, "maintenance of the primary: switch over first"},
        {S::WaitPrimary, S::PrepareMaintenance, A::StopPostgres, "maintenance of the primary: switch over first"},
        {S::ApplySettings, S::PrepareMaintenance, A::StopPostgres, "maintenance of the primary: switch over first"},
        {S::PrepareMaintenance, S::Maintenance, A::ReleaseForMaintenance, "switchover done: the DBA owns Postgres now"},
        {S::PrepareMaintenance, S::Demoted, A::StopPostgres, "declared failed while handing over: stay stopped"},
        {S::PrepareMaintenance, S::WaitPrimary, A::ResumeAsPrimary, "maintenance switchover aborted: start again"},
    };
    // Removal works from anywhere.
    for (NodeState from : all_node_states())
        if (from != S::Dropped) t.push_back({from, S::Dropped, A::DropNode, "removed: stop Postgres and unregister"});
    return t;
}

}  // namespace

const std::vector<KeeperTransition>& keeper_transitions() {
    static const std::vector<KeeperTransition> table = build_table();
    return table;
}

const KeeperTransition* find_keeper_transition(NodeState from, NodeState to) {
    for (const auto& edge : keeper_transitions())
        if (edge.from == from && edge.to == to) return &edge;
    return nullptr;
}

std::optional<std::vector<KeeperTransition>> keeper_path(NodeState from, NodeState to) {
    if (from == to) return std::vector<KeeperTransition>{};
    // Breadth-first over the table; table order breaks ties, so the path is deterministic.
    std::map<NodeState, const KeeperTransition*> reached_by;
    std::deque<NodeState> queue{from};
    reached_by[from] = nullptr;
    while (!queue.empty()) {
        const NodeState here = queue.front();
        queue.pop_front();
        if (here == to) break;
        for (const auto& edge : keeper_transitions()) {
            if (edge.from != here || reached_by.count(edge.to)) continue;
            // On the way to a goal that is no primary's, never take writes: a detour
            // through a primary state would acknowledge commits nobody else has.
            // (A fenced primary told to drain does restart, so that a fast shutdown
            // hands its standbys all WAL.)
            if (is_writable(edge.to) && edge.to != to && !belongs_to_primary(to)) continue;
            reached_by[edge.to] = &edge;
            queue.push_back(edge.to);
        }
    }
    if (!reached_by.count(to)) return std::nullopt;
    std::vector<KeeperTransition> path;
    for (const KeeperTransition* edge = reached_by[to]; edge != nullptr; edge = reached_by[edge->from])
        path.insert(path.begin(), *edge);
    return path;
}

}  // namespace autofailover
