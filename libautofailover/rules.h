// Internal to the pure core: the rules decide() applies, one function per
// situation, in the order decide() runs them (docs/fsm.md lists them).
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/decision_context.h"

namespace autofailover::detail {

// election.cpp
// The node's keeper vetoed the promotion it was last chosen for (its pre_promote
// hook refused after the goal was assigned).
bool vetoed_this_promotion(const NodeSnapshot& node);
// A veto younger than promotion_veto_timeout: the node is not elected meanwhile.
bool veto_stands(const DecisionContext& ctx, const NodeSnapshot& node);
void primary_failed(DecisionContext& ctx);
// The primary (ran with synchronous replication, a writable goal) is suspected: keeper silent for
// primary_suspect_timeout and a probe newer than its last report failed. Not a failure: nobody is promoted on it.
bool primary_suspected(const DecisionContext& ctx, const NodeSnapshot& primary);
// While the primary is suspected its secondaries freeze and a candidate is elected among them, so its fencing wait
// runs before it is declared failed; once the suspicion is over they are secondaries again.
void primary_suspect_freeze(DecisionContext& ctx);
// The node was elected (prepare_promotion) from report_lsn while the primary was suspected.
bool elected_while_suspected(const NodeSnapshot& node);
void election_without_primary(DecisionContext& ctx);
// handover.cpp
void primary_handing_over(DecisionContext& ctx);
// decide.cpp: the rule for a group with one active node, run first by decide()
// (the rules for a group with a writable primary are local to decide.cpp).
void lone_node_becomes_single(DecisionContext& ctx);

}  // namespace autofailover::detail
