// decide(): the group-wide step. Each rule is one function named after the
// situation it handles; decide() applies them in order, like a runbook.
#include "libautofailover/decide.h"

#include "libautofailover/operator_commands.h"
#include "libautofailover/replication_names.h"
#include "libautofailover/rules.h"

namespace autofailover {
namespace detail {

namespace {

using S = NodeState;

bool has_healthy_quorum_secondary(const DecisionContext& ctx, const NodeSnapshot& primary) {
    for (const auto& node : ctx.group().nodes)
        if (node.id != primary.id && node.replication_quorum && node.goal_state == S::Secondary && ctx.healthy(node))
            return true;
    return false;
}

// The synchronous_standby_names the primary would run with as `primary`. The
// rules never let a primary report primary or apply_settings with '' in force:
// the failover rules take those states as proof of synchronous replication.
std::string sync_list_if_primary(const DecisionContext& ctx, const NodeSnapshot& primary) {
    GroupSnapshot group = ctx.group();
    for (auto& node : group.nodes)
        if (node.id == primary.id) node.goal_state = S::Primary;
    return synchronous_standby_names(group, ctx.settings());
}

bool promotion_in_progress(const DecisionContext& ctx) {
    if (ctx.handing_over_node()) return true;
    for (const auto& node : ctx.group().nodes)
        if (in_promotion(node.goal_state)) return true;
    return false;
}

void primary_alone_becomes_single(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (primary.goal_state == S::Single) return;
    if (ctx.active_nodes().size() != 1) return;
    ctx.assign(primary.id, S::Single, "every other node was removed: " + label(primary) + " runs alone");
}

void single_primary_gets_a_standby(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (primary.goal_state != S::Single || ctx.active_nodes().size() < 2) return;
    ctx.assign(primary.id, S::WaitPrimary, "a standby is joining: " + label(primary) + " prepares to accept it");
}

void legacy_join_primary(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (converged(primary, S::JoinPrimary))
        ctx.assign(primary.id, S::Primary, label(primary) + " reports the legacy join_primary state");
}

void unhealthy_secondary_stops_being_candidate(DecisionContext& ctx) {
    for (const auto& node : ctx.group().nodes)
        if (node.goal_state == S::Secondary && ctx.unhealthy(node))
            ctx.assign(node.id, S::Catchingup,
                       label(node) + " is unhealthy: it is no longer a failover candidate");
}

void standby_allowed_to_join(DecisionContext& ctx, const NodeSnapshot& primary) {
    const bool primary_accepts = is_writable(primary.reported_state) && primary.reported_state != S::Single &&
                                 primary.goal_state != S::Single;
    for (const auto& node : ctx.group().nodes) {
        if (node.goal_state != S::WaitStandby) continue;
        if (primary_accepts)
            ctx.assign(node.id, S::Catchingup,
                       "the primary " + label(primary) + " accepts " + label(node) + ": base backup, then stream");
        else
            ctx.wait(label(node) + " waits for the primary " + label(primary) + " to accept a standby");
    }
}

// A standby becomes a secondary (a failover candidate, listed in the primary's
// synchronous_standby_names) only on the primary's word: its keeper saw it
// streaming in pg_stat_replication, flushed within the threshold. The standby's
// own report (state, LSN) is not enough: a registered node that lies about them
// would freeze the primary's commits, or win an election (security review #3).
void standby_caught_up(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (!is_writable(primary.reported_state)) return;
    const Lsn threshold = ctx.settings().enable_sync_wal_threshold;
    for (const auto& node : ctx.group().nodes) {
        if (!converged(node, S::Catchingup) || ctx.unhealthy(node) || node.lsn == 0) continue;
        if (node.timeline != primary.timeline) continue;
        const auto flushed = confirmed_flush_lsn(primary, node.id);
        if (!flushed) {
            if (node.lsn + threshold >= primary.lsn)
                ctx.wait(label(node) + " reports it caught up, but the primary " + label(primary) +
                         " does not see it streaming: it stays catchingup");
            continue;
        }
        if (*flushed + threshold < primary.lsn) continue;
        ctx.assign(node.id, S::Secondary,
                   label(node) + " streams from the primary, within " + std::to_string(threshold) +
                       " bytes of it on the same timeline: it is a failover candidate");
        if (node.replication_quorum && converged(primary, S::Primary))
            ctx.assign(primary.id, S::ApplySettings,
                       label(node) + " caught up: the primary adds it to synchronous_standby_names");
    }
}

void standby_follows_new_primary(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (!is_writable(primary.reported_state)) return;
    for (const auto& node : ctx.group().nodes) {
        if (node.id == primary.id) continue;
        if (node.goal_state == S::ReportLsn)
            ctx.assign(node.id, S::Catchingup, "the election is over: follow the elected primary " + label(primary));
        else if (converged(node, S::JoinSecondary))
            ctx.assign(node.id, S::Catchingup, label(node) + " streams from the promoted primary " + label(primary));
    }
}

void old_primary_rejoins(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (!is_writable(primary.reported_state)) return;
    for (const auto& node : ctx.group().nodes)
        if (converged(node, S::Demoted) && ctx.reporting(node))
            ctx.assign(node.id, S::Catchingup,
                       "the old primary " + label(node) + " rejoins as a standby of " + label(primary) +
                           " (pg_rewind, or a fresh base backup)");
}

// A standby leaves the synchronous_standby_names first; it may stop only once
// the primary runs with a list that no longer names it (an apply_settings that
// completed after the standby asked), so no acknowledged commit is only on it.
// Commits acknowledged before the primary dropped `leaving` from its list may live
// on `leaving` alone (ANY n over the old list). They are safe once n standbys of the
// next list have flushed as far as `leaving` had, both read from the primary's same
// report (pg_stat_replication): sync rep releases commits in LSN order, so a standby
// that flushed that far holds every earlier commit. Found by the simulation with
// delayed reports: a lagging listed standby was promoted without such a commit.
std::string list_lacks_what_leaving_holds(const DecisionContext& ctx, const NodeSnapshot& primary,
                                          const NodeSnapshot& leaving) {
    const Lsn needed = confirmed_flush_lsn(primary, leaving.id).value_or(leaving.lsn);
    int holders = 0;
    for (const auto& node : ctx.group().nodes) {
        if (node.id == primary.id || node.id == leaving.id || !node.replication_quorum) continue;
        if (node.goal_state != S::Secondary && node.goal_state != S::PreparePromotion) continue;
        if (confirmed_flush_lsn(primary, node.id).value_or(0) >= needed) ++holders;
    }
    if (holders >= ctx.sync_count()) return "";
    return "maintenance of " + label(leaving) + " waits: " + std::to_string(holders) + " of the " +
           std::to_string(ctx.sync_count()) + " standbys needed in the next list have flushed what " + label(leaving) +
           " holds (LSN " + format_lsn(needed) + "), as " + label(primary) + " reports them";
}

void standby_enters_maintenance(DecisionContext& ctx, const NodeSnapshot& primary) {
    for (const auto& node : ctx.group().nodes) {
        if (node.goal_state != S::WaitMaintenance) continue;
        const bool list_applied_without_it =
            converged(primary, S::WaitPrimary) || converged(primary, S::Single) ||
            (converged(primary, S::Primary) && primary.goal_assigned_at > node.goal_assigned_at);
        const std::string lacking = list_applied_without_it && converged(primary, S::Primary)
                                        ? list_lacks_what_leaving_holds(ctx, primary, node)
                                        : "";
        if (!lacking.empty()) {
            ctx.wait(lacking);
        } else if (list_applied_without_it) {
            ctx.assign(node.id, S::Maintenance, "the primary no longer counts on " + label(node) + ": maintenance starts");
        } else if (converged(primary, S::Primary)) {
            if (!sync_list_if_primary(ctx, primary).empty())
                ctx.assign(primary.id, S::ApplySettings,
                           label(node) + " goes into maintenance: the primary removes it from synchronous_standby_names");
            else if (ctx.settings().number_sync_standbys == 0)
                ctx.assign(primary.id, S::WaitPrimary,
                           label(node) + " goes into maintenance and no other standby can acknowledge commits: the "
                                         "primary turns synchronous replication off first");
            else
                ctx.wait("maintenance of " + label(node) + " waits: no other standby can acknowledge commits and "
                         "number_sync_standbys = " + std::to_string(ctx.settings().number_sync_standbys));
        }
    }
}

// The list emptied between the assignment and the keeper's next report (the
// keeper refuses to run primary or apply_settings with an empty list).
void sync_list_vanished(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (primary.goal_state != S::Primary && primary.goal_state != S::ApplySettings) return;
    if (primary.reported_state == primary.goal_state || !sync_list_if_primary(ctx, primary).empty()) return;
    if (ctx.settings().number_sync_standbys == 0 && !promotion_in_progress(ctx))
        ctx.assign(primary.id, S::WaitPrimary,
                   "no standby is left to acknowledge commits: " + label(primary) +
                       " keeps synchronous replication off");
}

void apply_settings_done(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (!converged(primary, S::ApplySettings)) return;
    if (sync_list_if_primary(ctx, primary).empty())
        ctx.assign(primary.id, S::WaitPrimary,
                   label(primary) + " applied the changed settings; no standby can acknowledge commits: synchronous "
                                    "replication off");
    else if (has_healthy_quorum_secondary(ctx, primary) || ctx.settings().number_sync_standbys > 0)
        ctx.assign(primary.id, S::Primary, label(primary) + " applied the updated synchronous_standby_names");
    else
        ctx.assign(primary.id, S::WaitPrimary,
                   label(primary) + " applied the changed settings; no healthy quorum standby: synchronous replication off");
}

// standby_caught_up asks a converged primary to add another quorum secondary to its
// list; a primary that was still on its way to primary then (e.g. wait_primary ->
// primary with the list of that moment) kept running without it. The list it
// applied was computed when its goal was assigned, so a quorum secondary whose
// goal is newer may be missing: apply the list again (at worst once too often).
void secondary_missing_from_list(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (!converged(primary, S::Primary)) return;
    for (const auto& node : ctx.group().nodes)
        if (node.id != primary.id && node.replication_quorum && node.goal_state == S::Secondary &&
            node.goal_assigned_at > primary.goal_assigned_at) {
            ctx.assign(primary.id, S::ApplySettings,
                       label(node) + " became a secondary after " + label(primary) +
                           " applied its synchronous_standby_names: the primary adds it");
            return;
        }
}

// With number_sync_standbys = 0 the formation prefers availability: when no
// healthy quorum standby is left, commits would block, so the primary runs
// without synchronous replication. Never while a node is being promoted or the
// primary hands over: the candidate may need every commit the primary takes.
void relax_sync_replication(DecisionContext& ctx, const NodeSnapshot& primary) {
    const S goal = primary.goal_state;
    if (goal != S::Primary && goal != S::ApplySettings && goal != S::JoinPrimary) return;
    if (has_healthy_quorum_secondary(ctx, primary)) return;
    if (ctx.settings().number_sync_standbys > 0) {
        ctx.wait("no healthy quorum standby: commits block until one is back (number_sync_standbys = " +
                 std::to_string(ctx.settings().number_sync_standbys) + ")");
        return;
    }
    if (promotion_in_progress(ctx)) {
        ctx.wait("no healthy quorum standby, but a promotion is in progress: synchronous replication stays on");
        return;
    }
    ctx.assign(primary.id, S::WaitPrimary,
               "no healthy quorum standby left and number_sync_standbys = 0: " + label(primary) +
                   " turns synchronous replication off so commits do not block");
}

void enable_sync_replication(DecisionContext& ctx, const NodeSnapshot& primary) {
    if (!converged(primary, S::WaitPrimary)) return;
    for (const auto& node : ctx.group().nodes)
        if (node.id != primary.id && node.replication_quorum && converged(node, S::Secondary) && ctx.healthy(node)) {
            ctx.assign(primary.id, S::Primary,
                       label(node) + " is a caught-up quorum standby: " + label(primary) +
                           " turns synchronous replication on");
            return;
        }
}

}  // namespace

void lone_node_becomes_single(DecisionContext& ctx) {
    const auto active = ctx.active_nodes();
    if (active.size() != 1) return;
    const NodeSnapshot& node = *active.front();
    // A lone standby adopted by a successor monitor is not alone: its primary, never adopted,
    // may still run. No promotion during the adoption grace, and after it only once that
    // primary has surely fenced itself (its standby froze when report_lsn was assigned).
    if (const auto& deadline = ctx.group().adoption_deadline; deadline && node.goal_state == S::ReportLsn) {
        const auto& t = ctx.settings().timeouts;
        const auto fence_wait = t.network_partition_timeout + t.fencing_margin;
        if (ctx.clock().now < *deadline || ctx.clock().now - node.goal_assigned_at < fence_wait) {
            ctx.wait(label(node) + " is the only adopted node: the primary of this group was never adopted and may "
                                   "still run; no promotion before the adoption grace ends and it has fenced itself");
            return;
        }
    }
    if (node.goal_state == S::ReportLsn && converged(node, S::ReportLsn) && node.candidate_priority > 0)
        ctx.assign(node.id, S::Single, label(node) + " is alone and may now be promoted: it runs as a single primary");
    else if (node.goal_state == S::ReportLsn && node.candidate_priority == 0)
        ctx.wait(label(node) + " is alone with candidate_priority 0: raise it, or add a node that can be primary");
}

}  // namespace detail

namespace {

// The rules of a group with a writable primary run only while it is healthy: an unhealthy primary is the
// failover rules' business, and relaxing it here would turn a safe failover into one that may lose commits.
// Each looks the primary up again, since it reads the goals the rules before it assigned.
// While the primary is suspected nothing else changes: its frozen standbys must not make it relax synchronous
// replication (a failover then would be refused).
template <void (*Rule)(detail::DecisionContext&, const NodeSnapshot&)>
void with_healthy_primary(detail::DecisionContext& ctx) {
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (primary && ctx.healthy(*primary) && !detail::primary_suspected(ctx, *primary)) Rule(ctx, *primary);
}

template <void (*Rule)(detail::DecisionContext&)>
void while_primary_healthy(detail::DecisionContext& ctx) {
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (primary && ctx.healthy(*primary) && !detail::primary_suspected(ctx, *primary)) Rule(ctx);
}

struct NamedRule {
    const char* name;
    void (*apply)(detail::DecisionContext&);
};

// decide(), top to bottom (docs/fsm.md, "Rules"). A node keeps the first goal a rule assigns it in a pass; a later
// rule's assignment to it is recorded in Decision::shadowed, not applied.
const NamedRule kRules[] = {
    // A group without a healthy writable primary.
    {"lone_node_becomes_single", detail::lone_node_becomes_single},
    {"primary_failed", detail::primary_failed},
    {"primary_suspect_freeze", detail::primary_suspect_freeze},
    {"primary_handing_over", detail::primary_handing_over},
    {"election_without_primary", detail::election_without_primary},
    // A group with a healthy writable primary.
    {"primary_alone_becomes_single", with_healthy_primary<detail::primary_alone_becomes_single>},
    {"single_primary_gets_a_standby", with_healthy_primary<detail::single_primary_gets_a_standby>},
    {"legacy_join_primary", with_healthy_primary<detail::legacy_join_primary>},
    {"unhealthy_secondary_stops_being_candidate", while_primary_healthy<detail::unhealthy_secondary_stops_being_candidate>},
    {"standby_allowed_to_join", with_healthy_primary<detail::standby_allowed_to_join>},
    {"standby_caught_up", with_healthy_primary<detail::standby_caught_up>},
    {"standby_follows_new_primary", with_healthy_primary<detail::standby_follows_new_primary>},
    {"old_primary_rejoins", with_healthy_primary<detail::old_primary_rejoins>},
    {"standby_enters_maintenance", with_healthy_primary<detail::standby_enters_maintenance>},
    {"sync_list_vanished", with_healthy_primary<detail::sync_list_vanished>},
    {"apply_settings_done", with_healthy_primary<detail::apply_settings_done>},
    {"secondary_missing_from_list", with_healthy_primary<detail::secondary_missing_from_list>},
    {"relax_sync_replication", with_healthy_primary<detail::relax_sync_replication>},
    {"enable_sync_replication", with_healthy_primary<detail::enable_sync_replication>},
};

}  // namespace

std::vector<std::string_view> decide_rule_names() {
    std::vector<std::string_view> names;
    for (const auto& rule : kRules) names.emplace_back(rule.name);
    return names;
}

Decision decide(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock) {
    detail::DecisionContext ctx(group, settings, clock);
    for (const auto& rule : kRules) ctx.run_rule(rule.name, rule.apply);
    return ctx.take();
}

Assignment initial_assignment(const GroupSnapshot& group, NodeId new_node_id, int candidate_priority) {
    bool others = false;
    for (const auto& node : group.nodes)
        if (node.goal_state != NodeState::Dropped && node.id != new_node_id) others = true;
    if (!others) {
        if (candidate_priority > 0)
            return {new_node_id, NodeState::Single, "first node of the group: it runs as a single primary", "initial_assignment"};
        return {new_node_id, NodeState::ReportLsn,
                "first node of the group, with candidate_priority 0: it waits for a node that can be primary", "initial_assignment"};
    }
    return {new_node_id, NodeState::WaitStandby, "the group has a node already: this one joins as a standby", "initial_assignment"};
}

Assignment adoption_assignment(const GroupSnapshot& group, NodeId node_id, NodeState reported, int timeline) {
    const std::string who = "node " + std::to_string(node_id);
    if (is_writable(reported)) {
        for (const auto& node : group.nodes) {
            if (node.id == node_id) continue;
            if (belongs_to_primary(node.goal_state))
                throw OperatorError("group " + std::to_string(group.group_id) + " already has a primary: " +
                                    detail::label(node) + " (id " + std::to_string(node.id) +
                                    ") was adopted as primary; " + who +
                                    " claims to be primary too. Check which one really is (the other must be "
                                    "stopped or rebuilt as a standby) before adopting it");
            if (node.timeline > timeline)
                throw OperatorError(who + " claims to be primary on timeline " + std::to_string(timeline) + ", but " +
                                    detail::label(node) + " was adopted on timeline " +
                                    std::to_string(node.timeline) + ": a newer primary exists or existed");
        }
        return {node_id, reported,
                who + " adopted by a successor monitor as the primary it runs as (" + std::string(to_string(reported)) +
                    "): no failover", "adoption_assignment"};
    }
    if (reported == NodeState::Secondary || reported == NodeState::Catchingup) {
        for (const auto& node : group.nodes)
            if (node.id != node_id && belongs_to_primary(node.goal_state) && node.timeline < timeline)
                throw OperatorError(who + " is a standby on timeline " + std::to_string(timeline) +
                                    ", newer than the adopted primary " + detail::label(node) + "'s timeline " +
                                    std::to_string(node.timeline) + ": adopt the node that really is primary");
        return {node_id, NodeState::Catchingup,
                who + " adopted by a successor monitor as a standby: it is a secondary again once the primary reports it "
                      "streaming", "adoption_assignment"};
    }
    throw OperatorError(who + " reports " + std::string(to_string(reported)) +
                        ": only a node running as a primary (single, wait_primary, primary, join_primary, "
                        "apply_settings) or a standby (secondary, catchingup) can be adopted; wait until its "
                        "transition ends");
}

std::optional<NodeId> find_primary(const GroupSnapshot& group) {
    const NodeSnapshot* found = detail::writable_goal_node(group.nodes);
    if (!found)
        for (const auto& node : group.nodes)
            if (node.goal_state == NodeState::Draining || node.goal_state == NodeState::PrepareMaintenance ||
                node.goal_state == NodeState::DemoteTimeout) {
                found = &node;
                break;
            }
    if (!found) return std::nullopt;
    return found->id;
}

}  // namespace autofailover
