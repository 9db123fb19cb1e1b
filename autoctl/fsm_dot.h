// The keeper's transition table (libautofailover/keeper_transitions.h) as a
// Graphviz digraph: `autoctl show fsm --dot`, rendered to docs/fsm.svg by
// `make fsm-diagram`.
#pragma once

#include <string>

namespace autoctl {

std::string fsm_dot();

}  // namespace autoctl
