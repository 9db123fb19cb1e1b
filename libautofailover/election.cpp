// Failover: declaring the primary failed, freezing the standbys, electing the
// node that holds every acknowledged commit, and driving its promotion.
#include "libautofailover/rules.h"

#include <algorithm>

namespace autofailover {
namespace detail {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string ms_text(Clock::duration d) {
    return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
}

bool is_candidate_goal(NodeState goal) {
    return goal == NodeState::FastForward || goal == NodeState::PreparePromotion ||
           goal == NodeState::StopReplication;
}

// Why a node does not count for the election yet, for waiting_reason.
std::string why_missing(const DecisionContext& ctx, const NodeSnapshot& node) {
    if (!ctx.reporting(node)) return label(node) + " (keeper silent)";
    if (ctx.unhealthy(node)) return label(node) + " (Postgres down)";
    return label(node) + " (not yet in report_lsn, reports " + std::string(to_string(node.reported_state)) + ")";
}

// An old primary that was cut from the monitor but not from its standbys kept
// its fencing clock running only from the moment the standbys froze (at the
// latest when the candidate was chosen). Unless it is known to be stopped, the
// promotion waits network_partition_timeout + fencing_margin from then, so two
// primaries never run at once. Empty when the promotion may go ahead.
std::string old_primary_not_yet_fenced(const DecisionContext& ctx, const NodeSnapshot& candidate) {
    const auto& t = ctx.settings().timeouts;
    const auto fence_wait = t.network_partition_timeout + t.fencing_margin;
    const auto since_chosen = ctx.clock().now - candidate.goal_assigned_at;
    // A group adopted without its primary (M6): that primary is in no row, but may
    // run until it fences itself, which starts when its standbys froze.
    if (ctx.group().adoption_deadline && since_chosen < fence_wait)
        return "promotion of " + label(candidate) + " waits " + ms_text(fence_wait - since_chosen) +
               " more: the primary of this group was never adopted and may still run until it fences itself";
    for (const auto& node : ctx.group().nodes) {
        if (node.id == candidate.id) continue;
        if (node.goal_state != NodeState::Demoted && node.goal_state != NodeState::Dropped) continue;
        if (!is_writable(node.reported_state)) continue;  // it reported being stopped
        const bool known_stopped = ctx.reporting(node) && !node.pg_is_running;
        if (known_stopped || since_chosen >= fence_wait) continue;
        return "promotion of " + label(candidate) + " waits " + ms_text(fence_wait - since_chosen) +
               " more: the old primary " + label(node) + " may still run until it fences itself";
    }
    return "";
}

}  // namespace

bool vetoed_this_promotion(const NodeSnapshot& node) {
    return node.promotion_vetoed_at && *node.promotion_vetoed_at >= node.goal_assigned_at;
}

bool veto_stands(const DecisionContext& ctx, const NodeSnapshot& node) {
    return node.promotion_vetoed_at &&
           ctx.clock().now - *node.promotion_vetoed_at < ctx.settings().timeouts.promotion_veto_timeout;
}

const NodeSnapshot* choose_candidate(const std::vector<const NodeSnapshot*>& eligible,
                                     const FormationSettings& settings) {
    const auto better = [](const NodeSnapshot* a, const NodeSnapshot* b) {
        if (a->candidate_priority != b->candidate_priority) return a->candidate_priority > b->candidate_priority;
        if (a->timeline != b->timeline) return a->timeline > b->timeline;
        if (a->lsn != b->lsn) return a->lsn > b->lsn;
        return a->id < b->id;
    };
    const NodeSnapshot* best_quorum = nullptr;
    const NodeSnapshot* best_async = nullptr;
    for (const NodeSnapshot* node : eligible) {
        if (node->candidate_priority <= 0) continue;
        const NodeSnapshot*& best = node->replication_quorum ? best_quorum : best_async;
        if (!best || better(node, best)) best = node;
    }
    if (best_quorum) return best_quorum;
    // A standby outside the quorum is promoted only when nobody in it can be and
    // the formation prefers availability (number_sync_standbys = 0).
    return settings.number_sync_standbys == 0 ? best_async : nullptr;
}

void start_election(DecisionContext& ctx, const NodeSnapshot& old_primary, const std::string& why) {
    const NodeId old_id = old_primary.id;
    // A primary with a writable goal has no switchover candidate: a node elected meanwhile was elected while it
    // was suspected, among frozen standbys, and stays elected (its choice is when its fencing wait started).
    const bool was_writable = is_writable(old_primary.goal_state);
    ctx.assign(old_id, NodeState::Demoted, why + ": it is demoted and must stay stopped");
    for (const auto& node : ctx.group().nodes) {
        if (node.id == old_id) continue;
        if (was_writable && elected_while_suspected(node)) continue;
        if ((is_standby_goal(node.goal_state) || is_candidate_goal(node.goal_state)) && reports_streaming_standby(node))
            ctx.assign(node.id, NodeState::ReportLsn,
                       "the primary " + label(old_primary) +
                           " failed: stop replication and report the last received LSN for the election");
    }
}

void primary_failed(DecisionContext& ctx) {
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (!primary) primary = ctx.handing_over_node();
    if (!primary || primary->goal_state == NodeState::Single) return;
    // Only a node that acts (or may act) as the primary can fail as one; a draining
    // primary that reported draining stopped on purpose.
    const bool acts_as_primary = is_writable(primary->reported_state) ||
                                 (primary->goal_state == NodeState::WaitPrimary &&
                                  (primary->reported_state == NodeState::PreparePromotion ||
                                   primary->reported_state == NodeState::StopReplication));
    if (!acts_as_primary) return;
    // Told to drain, its keeper reports Postgres stopped before it reports the
    // finished edge (a heartbeat during pg_ctl stop): stopped on purpose, the
    // handover rules wait for it. Should its keeper go silent, it is failed over.
    const bool handing_over = primary->goal_state == NodeState::Draining ||
                              primary->goal_state == NodeState::PrepareMaintenance;
    if (handing_over && ctx.reporting(*primary) && !primary->pg_is_running) return;

    const auto& t = ctx.settings().timeouts;
    if (!ctx.unhealthy(*primary)) {
        if (!ctx.reporting(*primary))
            ctx.wait("the keeper of the primary " + label(*primary) +
                     " is silent but its Postgres answers the probes: no failover");
        return;
    }
    const bool keeper_says_down = primary->last_report && !primary->pg_is_running;
    const auto fenced_after = t.network_partition_timeout + t.fencing_margin;
    if (!surely_fenced(ctx, *primary)) {
        ctx.wait("the primary " + label(*primary) + " is unhealthy; failover once it has surely fenced itself (keeper silent for " +
                 ms_text(ctx.silence(*primary)) + " of " + ms_text(fenced_after) + ")");
        return;
    }
    bool has_standby = false;
    for (const auto* node : ctx.active_nodes())
        if (node->id != primary->id && (is_standby_goal(node->goal_state) || in_promotion(node->goal_state)))
            has_standby = true;
    if (!has_standby) {
        ctx.wait("the primary " + label(*primary) + " is down and there is no standby to promote");
        return;
    }
    if (!ran_with_sync_replication(*primary)) {
        ctx.wait("the primary " + label(*primary) + " is down but ran without synchronous replication (" +
                 std::string(to_string(primary->reported_state)) +
                 "): promoting a standby could lose acknowledged commits; no automatic failover. Bring it back, or "
                 "run perform_failover with accept_data_loss => true");
        return;
    }
    const std::string why =
        keeper_says_down ? "the primary " + label(*primary) + " reports that its Postgres is down"
                         : "the primary " + label(*primary) + " fails the probes and its keeper has been silent for " +
                               ms_text(ctx.silence(*primary));
    start_election(ctx, *primary, why);
}

namespace {

// Standbys adopted by a new monitor before their primary (M6): "no primary" is expected until the operator
// adopts it; the standbys keep streaming from it. True while no election may run.
bool adoption_grace_holds(DecisionContext& ctx) {
    const auto& deadline = ctx.group().adoption_deadline;
    if (!deadline || ctx.clock().now >= *deadline) return false;
    ctx.wait("adoption: no primary adopted in this group yet; no election for " + ms_text(*deadline - ctx.clock().now) +
             " (autofailover.adoption_grace_period): adopt the primary with autoctl enable monitor");
    return true;
}

// Every standby freezes, including one that comes back during the election. False when there is no standby
// to elect at all.
bool standbys_freeze(DecisionContext& ctx) {
    bool any_standby = false;
    for (const auto& node : ctx.group().nodes) {
        if (is_standby_goal(node.goal_state) && reports_streaming_standby(node)) {
            any_standby = true;
            ctx.assign(node.id, NodeState::ReportLsn,
                       "no primary: stop replication and report the last received LSN for the election");
        } else if (in_promotion(node.goal_state)) {
            any_standby = true;
        }
    }
    return any_standby;
}

// A node already elected moves on (fast_forward → prepare_promotion → wait_primary once the old primary has surely
// fenced), or is dropped from the election when it failed or its hook vetoed. True when there was one.
bool elected_candidate_progresses(DecisionContext& ctx) {
    for (const auto& node : ctx.group().nodes) {
        if (!is_candidate_goal(node.goal_state)) continue;
        if (ctx.unhealthy(node)) {
            ctx.assign(node.id, NodeState::ReportLsn,
                       "the elected " + label(node) + " failed during its promotion: electing again");
            return true;
        }
        // Its keeper never promotes after a veto (it refused the edge to
        // prepare_promotion): another node is elected, or this one again later.
        if (vetoed_this_promotion(node)) {
            ctx.assign(node.id, NodeState::ReportLsn,
                       "the pre_promote hook of the elected " + label(node) +
                           " vetoed its promotion: electing again (it may be elected again after "
                           "promotion_veto_timeout, " + ms_text(ctx.settings().timeouts.promotion_veto_timeout) +
                           ")");
            return true;
        }
        if (converged(node, NodeState::FastForward))
            ctx.assign(node.id, NodeState::PreparePromotion,
                       label(node) + " fetched the missing WAL: it gets ready for promotion");
        else if (converged(node, NodeState::PreparePromotion) || converged(node, NodeState::StopReplication)) {
            const std::string unfenced = old_primary_not_yet_fenced(ctx, node);
            if (unfenced.empty())
                ctx.assign(node.id, NodeState::WaitPrimary,
                           label(node) + " holds every acknowledged commit: it is promoted");
            else
                ctx.wait(unfenced);
        }
        else
            ctx.wait("election: waiting for " + label(node) + " to reach " + std::string(to_string(node.goal_state)));
        return true;
    }
    return false;
}

// k quorum standbys may be in the synchronous_standby_names in force; every acknowledged commit is on n of them.
// Once k - n + 1 have frozen and reported, at least one of those holds every acknowledged commit, and the old
// primary cannot acknowledge any more.
int reports_needed(int quorum_standbys, int sync_count) { return std::max(0, quorum_standbys - sync_count + 1); }

// Elects among the frozen standbys once enough quorum standbys reported: the most advanced eligible one, after a
// fast-forward when a less advanced one wins on priority.
// While the primary is only suspected (early) a candidate behind another frozen standby is not elected yet:
// fetching WAL then is the declared failure's business.
void elect_candidate(DecisionContext& ctx, bool early = false) {
    const GroupSnapshot& group = ctx.group();
    std::vector<const NodeSnapshot*> quorum;
    std::vector<const NodeSnapshot*> reported;
    int quorum_reported = 0;
    std::string missing;
    for (const auto& node : group.nodes) {
        // Early, a report must also be newer than the freeze: a report_lsn sent before a thaw that the keeper has
        // acted on since (it streams again) is no proof that it is frozen now.
        const bool has_reported = converged(node, NodeState::ReportLsn) &&
                                  (!early || (node.last_report && *node.last_report > node.goal_assigned_at));
        if (has_reported) reported.push_back(&node);
        if (!may_be_in_sync_list(node)) continue;
        quorum.push_back(&node);
        if (has_reported)
            ++quorum_reported;
        else
            missing += (missing.empty() ? "" : ", ") + why_missing(ctx, node);
    }
    const int k = static_cast<int>(quorum.size());
    const int needed = reports_needed(k, ctx.sync_count());
    if (quorum_reported < needed) {
        ctx.wait("failover waits: " + std::to_string(quorum_reported) + " of " + std::to_string(k) +
                 " quorum standbys reported their LSN, " + std::to_string(needed) +
                 " needed to be sure one holds every acknowledged commit; missing: " + missing +
                 ". Bring them back, or run perform_failover with accept_data_loss => true");
        return;
    }
    if (reported.empty()) {
        ctx.wait("failover waits: no standby has reported its LSN yet");
        return;
    }

    const NodeSnapshot* most_advanced = reported.front();
    for (const NodeSnapshot* node : reported)
        if (lsn_precedes(*most_advanced, *node)) most_advanced = node;
    std::vector<const NodeSnapshot*> eligible;
    std::string vetoed;
    for (const NodeSnapshot* node : reported) {
        if (!ctx.healthy(*node)) continue;
        if (veto_stands(ctx, *node)) {
            const auto left = ctx.settings().timeouts.promotion_veto_timeout - (ctx.clock().now - *node->promotion_vetoed_at);
            vetoed += (vetoed.empty() ? "" : ", ") + label(*node) + " (asked again in " + ms_text(left) + ")";
            continue;
        }
        eligible.push_back(node);
    }
    const NodeSnapshot* candidate = choose_candidate(eligible, ctx.settings());
    if (!candidate && !vetoed.empty()) {
        ctx.wait("failover waits: the pre_promote hook vetoed the promotion of " + vetoed +
                 " and no other standby can be promoted");
        return;
    }
    if (!candidate) {
        std::string why;
        for (const NodeSnapshot* node : reported)
            why += (why.empty() ? "" : ", ") + label(*node) + " (priority " + std::to_string(node->candidate_priority) +
                   (node->replication_quorum ? "" : ", not in the quorum") + (ctx.healthy(*node) ? "" : ", unhealthy") +
                   ")";
        ctx.wait("failover waits: no standby can be promoted: " + why +
                 ". Raise a candidate_priority, or bring a candidate back");
        return;
    }
    if (lsn_precedes(*candidate, *most_advanced) && early) {
        ctx.wait("no early election: " + label(*candidate) + " would first fetch WAL from " + label(*most_advanced));
        return;
    }
    if (lsn_precedes(*candidate, *most_advanced)) {
        const auto source_id = choose_fast_forward_source(group, candidate->id);
        const NodeSnapshot* source = source_id ? group.find(*source_id) : nullptr;
        if (!source || lsn_precedes(*source, *most_advanced)) {
            ctx.wait("failover waits: " + label(*candidate) + " must fetch WAL up to " + format_lsn(most_advanced->lsn) +
                     " but " + label(*most_advanced) + ", which holds it, is unhealthy");
            return;
        }
        ctx.assign(candidate->id, NodeState::FastForward,
                   label(*candidate) + " is elected (priority " + std::to_string(candidate->candidate_priority) +
                       ") but is behind " + label(*source) + ": it first fetches WAL up to " + format_lsn(source->lsn));
        return;
    }
    ctx.assign(candidate->id, NodeState::PreparePromotion,
               label(*candidate) + " is elected (priority " + std::to_string(candidate->candidate_priority) +
                   ", LSN " + format_lsn(candidate->lsn) + ", the most advanced): it gets ready for promotion" +
                   (early ? "; it is promoted only if the suspected primary is declared failed" : ""));
}

}  // namespace

namespace {

// Standbys that streamed from the suspected primary stop, so its fencing clock (docs/write-lease.md) runs from
// now on: only its last monitor contact and these standbys' last replies renew its lease. Only secondaries
// freeze: a thaw makes them secondaries again, what they were. Another streaming standby keeps the freeze from
// electing anyone (it would still renew the lease), and the election waits for the declared failure as before.
void freeze_for_suspicion(DecisionContext& ctx, const NodeSnapshot& primary) {
    const std::string why = "the primary " + label(primary) + " is suspected (keeper silent for " +
                            ms_text(ctx.silence(primary)) + ", probes failing)";
    for (const auto& node : ctx.group().nodes)
        if (node.id != primary.id && node.goal_state == NodeState::Secondary && reports_streaming_standby(node))
            ctx.assign(node.id, NodeState::ReportLsn,
                       why + ": stop replication and report the last received LSN, so that its fencing clock runs; "
                             "streaming resumes if it reports again");
    for (const auto& node : ctx.group().nodes)
        if (node.id != primary.id && is_standby_goal(node.goal_state) && reports_streaming_standby(node)) {
            ctx.wait(why + ", but " + label(node) + " (" + std::string(to_string(node.goal_state)) +
                     ") still streams from it: no early election");
            return;
        }
    for (const auto& node : ctx.group().nodes) {
        if (!is_candidate_goal(node.goal_state)) continue;
        if (ctx.unhealthy(node) || vetoed_this_promotion(node)) {
            ctx.assign(node.id, NodeState::ReportLsn,
                       label(node) + " failed or vetoed its promotion while " + label(primary) +
                           " is suspected: it is no longer the candidate");
            return;
        }
        ctx.wait(why + ": " + label(node) + " is elected and its fencing wait runs; it is promoted only if " +
                 label(primary) + " is declared failed");
        return;
    }
    elect_candidate(ctx, /*early=*/true);
}

// The suspicion is over (the keeper reported, or Postgres answered a probe). Standbys frozen for it while the
// primary kept its goal with synchronous replication are secondaries again, what they were. Anything older than
// the primary's goal (a primary adopted by a new monitor, M6; an operator command meanwhile) is left to
// standby_follows_new_primary (report_lsn -> catchingup, confirmed by the primary's report before it is a
// secondary), and a candidate elected meanwhile follows the primary as catchingup.
void thaw_after_suspicion(DecisionContext& ctx, const NodeSnapshot& primary) {
    const bool reports = ctx.silence(primary) < ctx.settings().timeouts.primary_suspect_timeout;
    const std::string why =
        "the suspected primary " + label(primary) + (reports ? " reports again" : " answers the probes");
    const bool sync = ran_with_sync_replication(primary);
    for (const auto& node : ctx.group().nodes) {
        if (node.id == primary.id) continue;
        if (sync && in_promotion(node.goal_state) && node.goal_assigned_at >= primary.goal_assigned_at)
            ctx.assign(node.id, NodeState::Secondary, why + ": stream from it again");
        else if (is_candidate_goal(node.goal_state))
            ctx.assign(node.id, NodeState::Catchingup, why + ": the candidate elected meanwhile follows it");
    }
}

}  // namespace

bool elected_while_suspected(const NodeSnapshot& node) {
    return node.goal_state == NodeState::PreparePromotion &&
           (node.reported_state == NodeState::ReportLsn || node.reported_state == NodeState::PreparePromotion);
}

bool primary_suspected(const DecisionContext& ctx, const NodeSnapshot& primary) {
    const auto& t = ctx.settings().timeouts;
    if (t.primary_suspect_timeout >= t.node_considered_unhealthy_timeout) return false;  // no early freeze
    if (!is_writable(primary.goal_state) || !ran_with_sync_replication(primary)) return false;
    if (!primary.last_report || !primary.pg_is_running) return false;  // never reported, or reported down
    const bool probe_newer_than_report = primary.last_health_check && *primary.last_health_check > *primary.last_report;
    const bool past_startup_grace = ctx.clock().now - ctx.clock().monitor_started > t.startup_grace_period;
    return ctx.silence(primary) >= t.primary_suspect_timeout && primary.health == Health::Bad &&
           probe_newer_than_report && past_startup_grace;
}

void primary_suspect_freeze(DecisionContext& ctx) {
    const NodeSnapshot* primary = ctx.writable_goal_node();
    if (!primary || !is_writable(primary->reported_state)) return;
    if (primary_suspected(ctx, *primary))
        freeze_for_suspicion(ctx, *primary);
    else if (!ctx.unhealthy(*primary))
        thaw_after_suspicion(ctx, *primary);
}

void election_without_primary(DecisionContext& ctx) {
    if (ctx.writable_goal_node() || ctx.handing_over_node()) return;
    if (adoption_grace_holds(ctx)) return;
    if (!standbys_freeze(ctx)) return;
    if (elected_candidate_progresses(ctx)) return;
    elect_candidate(ctx);
}

}  // namespace detail

std::optional<NodeId> choose_fast_forward_source(const GroupSnapshot& group, NodeId candidate) {
    const NodeSnapshot* best = nullptr;
    for (const auto& node : group.nodes) {
        if (node.id == candidate || node.reported_state != NodeState::ReportLsn) continue;
        if (node.goal_state != NodeState::ReportLsn) continue;
        // A source must still run: its keeper says so, or it was never declared down.
        if (node.last_report && !node.pg_is_running) continue;
        if (node.health == Health::Bad && node.last_health_check && node.last_report &&
            *node.last_health_check > *node.last_report)
            continue;
        if (!best || detail::lsn_precedes(*best, node) ||
            (!detail::lsn_precedes(node, *best) && node.id < best->id))
            best = &node;
    }
    if (!best) return std::nullopt;
    return best->id;
}

}  // namespace autofailover
