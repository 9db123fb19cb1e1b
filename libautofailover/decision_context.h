// Internal to the pure core: the working state of one decide() / plan_*() call
// and the group queries the rules share. Not used outside libautofailover.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/decide.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace autofailover::detail {

// A copy of the group whose goals are updated as rules assign them, so later
// rules of the same pass see earlier decisions. The first assignment of a node
// in a pass wins: one pass never moves a node twice.
class DecisionContext {
public:
    DecisionContext(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock);

    const GroupSnapshot& group() const { return group_; }
    const FormationSettings& settings() const { return settings_; }
    const MonitorClock& clock() const { return clock_; }

    bool assign(NodeId node, NodeState goal, std::string reason);
    // Runs one rule of decide()'s table; its assignments carry its name.
    void run_rule(const char* name, void (*rule)(DecisionContext&));
    bool assigned_this_pass(NodeId node) const { return assigned_.count(node) > 0; }
    void wait(const std::string& reason);
    Decision take() { return std::move(decision_); }

    bool unhealthy(const NodeSnapshot& node) const { return node_is_unhealthy(node, settings_, clock_); }
    bool healthy(const NodeSnapshot& node) const { return !unhealthy(node); }
    bool reporting(const NodeSnapshot& node) const { return keeper_is_reporting(node, settings_, clock_); }
    // How long the keeper has been silent (very long when it never reported).
    Clock::duration silence(const NodeSnapshot& node) const;

    // Nodes not being removed.
    std::vector<const NodeSnapshot*> active_nodes() const;
    // The node with a writable goal (the primary, or the node being promoted to it).
    const NodeSnapshot* writable_goal_node() const;
    // The primary handing over (goal draining or prepare_maintenance).
    const NodeSnapshot* handing_over_node() const;
    int sync_count() const;  // n of "ANY n": max(1, number_sync_standbys)

private:
    GroupSnapshot group_;
    const FormationSettings& settings_;
    const MonitorClock& clock_;
    Decision decision_;
    std::set<NodeId> assigned_;
    const char* rule_ = "";
};

// The node with a writable goal (the primary, or the node being promoted to it) among `nodes`.
const NodeSnapshot* writable_goal_node(const std::vector<NodeSnapshot>& nodes);
// The old primary has surely stopped taking writes: its keeper says Postgres is down, or it has been silent
// longer than network_partition_timeout + fencing_margin (it fenced itself by then, docs/write-lease.md).
bool surely_fenced(const DecisionContext& ctx, const NodeSnapshot& primary);

std::string label(const NodeSnapshot& node);  // "node_2" (its name when set)
bool converged(const NodeSnapshot& node, NodeState state);
bool in_promotion(NodeState goal);  // report_lsn / fast_forward / prepare_promotion / stop_replication
// The primary ran with synchronous replication: every acknowledged commit is on
// n quorum standbys. Its goal counts too: once told wait_primary its keeper may
// already have turned synchronous replication off before reporting it.
bool ran_with_sync_replication(const NodeSnapshot& primary);
bool is_standby_goal(NodeState goal);  // catchingup, secondary, join_secondary, wait_maintenance
// Reports a standby state that streams (or froze its stream for an election).
bool reports_streaming_standby(const NodeSnapshot& node);
// Standbys that may be listed in the synchronous_standby_names in force (see docs/fsm.md).
bool may_be_in_sync_list(const NodeSnapshot& node);
bool lsn_precedes(const NodeSnapshot& a, const NodeSnapshot& b);  // (timeline, lsn) of a < b
// The flush LSN of `standby` as the primary reported it streaming; empty when the
// primary did not see it stream (whatever the standby itself reports).
std::optional<Lsn> confirmed_flush_lsn(const NodeSnapshot& primary, NodeId standby);

// Election: promotable node with the best (priority, timeline, lsn, -id).
const NodeSnapshot* choose_candidate(const std::vector<const NodeSnapshot*>& eligible, const FormationSettings& settings);
// Start an election: old primary demoted, every standby freezes and reports its LSN.
void start_election(DecisionContext& ctx, const NodeSnapshot& old_primary, const std::string& why);

}  // namespace autofailover::detail
