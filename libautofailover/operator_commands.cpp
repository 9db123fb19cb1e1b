// Operator commands: validate against the snapshot, then return the goal states
// that start the operation; decide() drives it from there.
#include "libautofailover/operator_commands.h"

#include "libautofailover/decision_context.h"
#include "libautofailover/replication_names.h"
#include "libautofailover/rules.h"

namespace autofailover {

namespace {

using S = NodeState;
using detail::DecisionContext;
using detail::label;

const NodeSnapshot& require_node(const GroupSnapshot& group, NodeId id) {
    const NodeSnapshot* node = group.find(id);
    if (!node)
        throw OperatorError("node " + std::to_string(id) + " is not in group " + std::to_string(group.group_id) +
                            " of formation " + group.formation + ": check the name with `autoctl show state`");
    return *node;
}

void refuse_during_failover(const DecisionContext& ctx, const std::string& what) {
    for (const auto& node : ctx.group().nodes)
        if (detail::in_promotion(node.goal_state) || node.goal_state == S::Draining ||
            node.goal_state == S::PrepareMaintenance)
            throw OperatorError("cannot " + what + ": a failover or switchover is in progress (" + label(node) +
                                " is " + std::string(to_string(node.goal_state)) +
                                "); wait until `autoctl show state` shows one primary");
}

// The converged, healthy primary, or an explanation.
const NodeSnapshot& require_healthy_primary(const DecisionContext& ctx, const std::string& what) {
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (!primary) throw OperatorError("cannot " + what + ": the group has no primary; see `autoctl show state`");
    if (primary->reported_state != primary->goal_state || ctx.unhealthy(*primary) || !ctx.reporting(*primary))
        throw OperatorError("cannot " + what + ": the primary " + label(*primary) + " is not healthy and settled (reports " +
                            std::string(to_string(primary->reported_state)) + ", goal " +
                            std::string(to_string(primary->goal_state)) + "); wait, or use perform_failover if it is down");
    return *primary;
}

bool promotable_standby(const DecisionContext& ctx, const NodeSnapshot& node) {
    return detail::converged(node, S::Secondary) && ctx.healthy(node) && ctx.reporting(node) &&
           node.candidate_priority > 0;
}

const NodeSnapshot& choose_handover_candidate(const DecisionContext& ctx, const NodeSnapshot& primary,
                                              std::optional<NodeId> target, const std::string& what) {
    if (target) {
        const NodeSnapshot& node = require_node(ctx.group(), *target);
        if (node.id == primary.id) throw OperatorError("cannot " + what + ": " + label(node) + " is already the primary");
        if (node.candidate_priority <= 0)
            throw OperatorError("cannot " + what + " to " + label(node) +
                                ": its candidate_priority is 0; raise it with `autoctl set node candidate-priority`");
        if (!promotable_standby(ctx, node))
            throw OperatorError("cannot " + what + " to " + label(node) + ": it is not a healthy secondary (reports " +
                                std::string(to_string(node.reported_state)) + "); wait until it has caught up");
        return node;
    }
    std::vector<const NodeSnapshot*> eligible;
    for (const auto& node : ctx.group().nodes)
        if (node.id != primary.id && promotable_standby(ctx, node)) eligible.push_back(&node);
    // Every WAL byte reaches the candidate before it is promoted, so a standby
    // outside the quorum is acceptable here when no quorum one is available.
    FormationSettings any_standby = ctx.settings();
    any_standby.number_sync_standbys = 0;
    const NodeSnapshot* best = detail::choose_candidate(eligible, any_standby);
    if (!best)
        throw OperatorError("cannot " + what +
                            ": no healthy secondary with candidate_priority > 0; add a standby or raise a priority");
    return *best;
}

}  // namespace

Decision plan_switchover(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
                         std::optional<NodeId> target) {
    DecisionContext ctx(group, settings, clock);
    refuse_during_failover(ctx, "switch over");
    const NodeSnapshot& primary = require_healthy_primary(ctx, "switch over");
    const NodeSnapshot& candidate = choose_handover_candidate(ctx, primary, target, "switch over");
    ctx.assign(primary.id, S::Draining,
               "switchover to " + label(candidate) + ": " + label(primary) +
                   " checkpoints and shuts down so its standbys receive all WAL");
    ctx.assign(candidate.id, S::PreparePromotion,
               "switchover: " + label(candidate) + " is promoted once it has all WAL of " + label(primary));
    return ctx.take();
}

Decision plan_failover(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
                       bool accept_data_loss) {
    DecisionContext ctx(group, settings, clock);
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (primary && ctx.healthy(*primary) && ctx.reporting(*primary)) {
        refuse_during_failover(ctx, "fail over");
        return plan_switchover(group, settings, clock);  // a live primary hands over without losing anything
    }
    if (primary) {
        if (!ctx.unhealthy(*primary) || !detail::surely_fenced(ctx, *primary))
            throw OperatorError("cannot fail over yet: the primary " + label(*primary) +
                                " may still be running; retry once it has been silent for network_partition_timeout + "
                                "fencing_margin, or stop it");
        if (!accept_data_loss && !detail::ran_with_sync_replication(*primary))
            throw OperatorError("the primary " + label(*primary) + " ran without synchronous replication (" +
                                std::string(to_string(primary->reported_state)) +
                                "): promoting a standby may lose acknowledged commits; rerun with "
                                "accept_data_loss => true to accept that");
    }
    if (!accept_data_loss) {
        if (!primary) throw OperatorError("no primary to fail over from: an election is running or the group is empty; "
                                          "see waiting_reason in `autoctl show state`, or pass accept_data_loss => true");
        detail::start_election(ctx, *primary, "operator failover: the primary " + label(*primary) + " is down");
        return ctx.take();
    }
    // Accepting data loss: promote the best healthy standby now, without waiting
    // for the missing quorum standbys.
    std::vector<const NodeSnapshot*> eligible;
    for (const auto& node : ctx.group().nodes)
        if ((!primary || node.id != primary->id) && ctx.healthy(node) && ctx.reporting(node) &&
            (detail::is_standby_goal(node.goal_state) || detail::in_promotion(node.goal_state)) &&
            (node.reported_state == S::Secondary || node.reported_state == S::Catchingup ||
             node.reported_state == S::ReportLsn || node.reported_state == S::PreparePromotion ||
             node.reported_state == S::FastForward))
            eligible.push_back(&node);
    FormationSettings any_standby = settings;
    any_standby.number_sync_standbys = 0;
    const NodeSnapshot* candidate = detail::choose_candidate(eligible, any_standby);
    if (!candidate)
        throw OperatorError("cannot fail over: no healthy standby with candidate_priority > 0 is streaming or frozen; "
                            "bring one back or raise a priority");
    if (primary)
        ctx.assign(primary->id, S::Demoted,
                   "operator failover accepting data loss: the primary " + label(*primary) + " is demoted");
    const std::string why = "operator failover accepting data loss: " + label(*candidate) +
                            " is promoted; commits acknowledged only by missing nodes may be lost";
    ctx.assign(candidate->id, S::PreparePromotion, why);
    for (const auto& node : ctx.group().nodes)
        if (node.id != candidate->id && (detail::is_standby_goal(node.goal_state) || detail::in_promotion(node.goal_state)))
            ctx.assign(node.id, S::ReportLsn, "operator failover: stop replication until " + label(*candidate) + " is promoted");
    return ctx.take();
}

Decision plan_start_maintenance(const GroupSnapshot& group, const FormationSettings& settings,
                                const MonitorClock& clock, NodeId node_id) {
    DecisionContext ctx(group, settings, clock);
    const NodeSnapshot& node = require_node(group, node_id);
    if (node.goal_state == S::Maintenance || node.goal_state == S::WaitMaintenance ||
        node.goal_state == S::PrepareMaintenance)
        throw OperatorError(label(node) + " is already in maintenance (" + std::string(to_string(node.goal_state)) + ")");
    refuse_during_failover(ctx, "start maintenance");
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (primary && primary->id == node.id) {
        const NodeSnapshot& p = require_healthy_primary(ctx, "put the primary into maintenance");
        const NodeSnapshot& candidate =
            choose_handover_candidate(ctx, p, std::nullopt, "put the primary into maintenance");
        ctx.assign(p.id, S::PrepareMaintenance,
                   "maintenance of the primary " + label(p) + ": it hands over to " + label(candidate) + " first");
        ctx.assign(candidate.id, S::PreparePromotion,
                   "maintenance of " + label(p) + ": " + label(candidate) + " is promoted once it has all WAL");
        return ctx.take();
    }
    if (node.goal_state != S::Secondary && node.goal_state != S::Catchingup)
        throw OperatorError("cannot start maintenance on " + label(node) + ": it is " +
                            std::string(to_string(node.goal_state)) + "; wait until it is a secondary or catching up");
    if (!primary) {
        ctx.assign(node.id, S::Maintenance, "maintenance of " + label(node) + " (no primary to protect)");
        return ctx.take();
    }
    int other_quorum_secondaries = 0;
    for (const auto& other : group.nodes)
        if (other.id != node.id && other.id != primary->id && other.replication_quorum &&
            other.goal_state == S::Secondary && ctx.healthy(other))
            ++other_quorum_secondaries;
    const bool needed = node.replication_quorum && node.goal_state == S::Secondary && other_quorum_secondaries == 0;
    if (needed && settings.number_sync_standbys > 0)
        throw OperatorError("cannot start maintenance on " + label(node) +
                            ": it is the last healthy quorum standby and number_sync_standbys = " +
                            std::to_string(settings.number_sync_standbys) +
                            ", so every commit would block; add a standby or lower number_sync_standbys first");
    if (needed && primary->goal_state != S::WaitPrimary && primary->goal_state != S::Single)
        ctx.assign(primary->id, S::WaitPrimary,
                   label(node) + " goes into maintenance and is the last quorum standby: the primary turns "
                                 "synchronous replication off first");
    ctx.assign(node.id, S::WaitMaintenance,
               "maintenance of " + label(node) + ": it waits until the primary no longer counts on it");
    return ctx.take();
}

Decision plan_stop_maintenance(const GroupSnapshot& group, const FormationSettings& settings,
                               const MonitorClock& clock, NodeId node_id) {
    DecisionContext ctx(group, settings, clock);
    const NodeSnapshot& node = require_node(group, node_id);
    if (node.goal_state != S::Maintenance && node.goal_state != S::WaitMaintenance)
        throw OperatorError(label(node) + " is not in maintenance (it is " + std::string(to_string(node.goal_state)) + ")");
    ctx.assign(node.id, S::Catchingup, "maintenance of " + label(node) + " is over: it rejoins as a standby");
    return ctx.take();
}

Decision plan_apply_settings(const GroupSnapshot& group, const FormationSettings& settings,
                             const MonitorClock& clock, const std::string& what_changed) {
    DecisionContext ctx(group, settings, clock);
    if (settings.number_sync_standbys < 0)
        throw OperatorError("number_sync_standbys must be 0 or more");
    const NodeSnapshot* primary = ctx.writable_goal_node();
    int quorum_standbys = 0;
    for (const auto& node : group.nodes)
        if ((!primary || node.id != primary->id) && node.replication_quorum && node.goal_state != S::Dropped &&
            node.goal_state != S::Maintenance && node.goal_state != S::Init)
            ++quorum_standbys;
    if (settings.number_sync_standbys > quorum_standbys)
        throw OperatorError(what_changed + " refused: number_sync_standbys = " +
                            std::to_string(settings.number_sync_standbys) + " needs that many quorum standbys, the group has " +
                            std::to_string(quorum_standbys) + "; add standbys or lower number_sync_standbys");
    if (primary && detail::converged(*primary, S::Primary)) {
        GroupSnapshot as_primary = group;
        for (auto& node : as_primary.nodes)
            if (node.id == primary->id) node.goal_state = S::Primary;
        if (!synchronous_standby_names(as_primary, settings).empty())
            ctx.assign(primary->id, S::ApplySettings,
                       what_changed + ": the primary " + label(*primary) + " applies the new synchronous_standby_names");
        else if (settings.number_sync_standbys == 0)
            ctx.assign(primary->id, S::WaitPrimary,
                       what_changed + ": no standby is left to acknowledge commits, synchronous replication off");
        else
            throw OperatorError(what_changed + " refused: no standby would be left in synchronous_standby_names while "
                                "number_sync_standbys = " + std::to_string(settings.number_sync_standbys) +
                                "; keep a quorum standby or lower number_sync_standbys");
    }
    return ctx.take();
}

Decision plan_remove_node(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
                          NodeId node_id) {
    DecisionContext ctx(group, settings, clock);
    const NodeSnapshot& node = require_node(group, node_id);
    if (node.goal_state == S::Dropped) throw OperatorError(label(node) + " is already being removed");
    const NodeSnapshot* primary = ctx.writable_goal_node();
    const bool is_primary = primary && primary->id == node.id;
    if (is_primary && ctx.active_nodes().size() > 1) {
        if (!detail::ran_with_sync_replication(node) && ctx.healthy(node))
            throw OperatorError("cannot remove the primary " + label(node) +
                                ": it runs without synchronous replication, so its standbys may miss commits; run "
                                "perform_switchover first, then remove it");
        ctx.assign(node.id, S::Dropped, "the operator removes the primary " + label(node) + "; the standbys elect a new one");
        for (const auto& other : group.nodes)
            if (other.id != node.id && (detail::is_standby_goal(other.goal_state) || detail::in_promotion(other.goal_state)))
                ctx.assign(other.id, S::ReportLsn,
                           "the primary " + label(node) + " is removed: report the last received LSN for the election");
        return ctx.take();
    }
    ctx.assign(node.id, S::Dropped, "the operator removes " + label(node));
    // A converged primary still lists the removed standby (with ANY n it may even
    // need it): it applies the list without it now, not whenever it next changes.
    if (primary && detail::converged(*primary, S::Primary) && node.replication_quorum) {
        GroupSnapshot after = group;
        for (auto& other : after.nodes)
            if (other.id == node.id) other.goal_state = S::Dropped;
        if (!synchronous_standby_names(after, settings).empty())
            ctx.assign(primary->id, S::ApplySettings,
                       label(node) + " is removed: the primary " + label(*primary) +
                           " applies synchronous_standby_names without it");
        else if (settings.number_sync_standbys == 0)
            ctx.assign(primary->id, S::WaitPrimary,
                       label(node) + " is removed and no standby is left to acknowledge commits: synchronous "
                                     "replication off");
    }
    return ctx.take();
}

}  // namespace autofailover
