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
void election_without_primary(DecisionContext& ctx);
// handover.cpp
void primary_handing_over(DecisionContext& ctx);
// decide.cpp: the rule for a group with one active node, run first by decide()
// (the rules for a group with a writable primary are local to decide.cpp).
void lone_node_becomes_single(DecisionContext& ctx);

}  // namespace autofailover::detail
