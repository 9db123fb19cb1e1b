// The decision locks' guard (decision_lock.cpp) for C callers that take a lock
// themselves, as node_active does. Plain C-style functions.
#pragma once

namespace autofailover_ext {

// Superusers and members of autofailover_operator: trusted with the locks, and
// allowed to report for any node.
bool is_operator_session();

// Call with false before taking a decision lock and with true once it is held
// (see the top of decision_lock.cpp).
void guard_decision_lock(bool acquired);

}  // namespace autofailover_ext
