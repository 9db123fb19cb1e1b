// The decision locks (docs/api.md, "Locking"): the one place that takes them, for
// the C callers (node_active) and the SQL API (_lock_formation, _lock_group).
// Plain C-style functions for callers connected to SPI.
#pragma once

namespace autofailover_ext {

// Superusers and members of autofailover_operator: trusted with the locks, and
// allowed to report for any node.
bool is_operator_session();

// FOR NO KEY UPDATE of the formation's / the group's row, guarded; ERROR 42704
// when there is no such row.
void lock_formation(const char* formation);
void lock_group(const char* formation, int group_id);

// Call with false before taking a decision lock and with true once it is held
// (see the top of decision_lock.cpp).
void guard_decision_lock(bool acquired);

}  // namespace autofailover_ext
