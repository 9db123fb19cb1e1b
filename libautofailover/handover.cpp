// Planned handover of the primary role (switchover, or maintenance of the
// primary): the old primary drains, the candidate is promoted only once it has
// received everything the old primary wrote.
#include "libautofailover/rules.h"

namespace autofailover::detail {

void primary_handing_over(DecisionContext& ctx) {
    const NodeSnapshot* old_primary = ctx.handing_over_node();
    if (!old_primary) return;
    const NodeSnapshot* candidate = nullptr;
    for (const auto& node : ctx.group().nodes)
        if (node.id != old_primary->id && node.goal_state == NodeState::PreparePromotion) candidate = &node;

    const bool timed_out =
        ctx.clock().now - old_primary->goal_assigned_at > ctx.settings().timeouts.switchover_timeout;
    std::string abort_reason;
    if (!candidate)
        abort_reason = "the switchover has no candidate any more";
    else if (ctx.unhealthy(*candidate))
        abort_reason = "the switchover candidate " + label(*candidate) + " failed before its promotion";
    else if (vetoed_this_promotion(*candidate))
        abort_reason = "the pre_promote hook of the switchover candidate " + label(*candidate) +
                       " vetoed its promotion";
    else if (timed_out)
        abort_reason = "the switchover did not complete within switchover_timeout";
    if (!abort_reason.empty()) {
        // The candidate was never told to promote, so the old primary still holds
        // every commit and nobody else may have taken writes: it simply resumes.
        if (!ctx.reporting(*old_primary)) {
            ctx.wait(abort_reason + ", and the keeper of " + label(*old_primary) +
                     " is silent: waiting for either to come back");
            return;
        }
        if (candidate)
            ctx.assign(candidate->id, NodeState::Catchingup, abort_reason + ": it keeps following the primary");
        ctx.assign(old_primary->id, NodeState::Primary,
                   abort_reason + ": " + label(*old_primary) + " resumes as the primary, it holds every commit");
        return;
    }

    if (!converged(*old_primary, old_primary->goal_state)) {
        ctx.wait("switchover: waiting for " + label(*old_primary) + " to drain");
        return;
    }
    if (!converged(*candidate, NodeState::PreparePromotion) || lsn_precedes(*candidate, *old_primary)) {
        // Timelines too: a candidate reporting an older timeline waits even with the same LSN.
        ctx.wait("switchover: waiting for " + label(*candidate) + " to receive WAL up to " +
                 format_lsn(old_primary->lsn) + " on timeline " + std::to_string(old_primary->timeline) +
                 " (it has " + format_lsn(candidate->lsn) + " on timeline " + std::to_string(candidate->timeline) +
                 ")");
        return;
    }
    const bool maintenance = old_primary->goal_state == NodeState::PrepareMaintenance;
    ctx.assign(candidate->id, NodeState::WaitPrimary,
               label(*candidate) + " received all WAL of " + label(*old_primary) + " (" +
                   format_lsn(old_primary->lsn) + "): it is promoted");
    ctx.assign(old_primary->id, maintenance ? NodeState::Maintenance : NodeState::Demoted,
               maintenance ? label(*old_primary) + " handed over the primary role: it is in maintenance now"
                           : label(*old_primary) + " handed over the primary role: it rejoins as a standby");
    for (const auto& node : ctx.group().nodes)
        if (node.id != candidate->id && node.id != old_primary->id &&
            (node.goal_state == NodeState::Secondary || node.goal_state == NodeState::Catchingup))
            ctx.assign(node.id, NodeState::JoinSecondary,
                       "switchover: follow the promoted primary " + label(*candidate));
}

}  // namespace autofailover::detail
