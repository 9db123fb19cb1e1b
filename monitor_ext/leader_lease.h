// The monitor's leader lease (docs/monitor-ha.md): with several monitors, the
// agent of the one that holds etcd's leader key hands its lease deadline to
// Postgres, which refuses to decide once it has passed. Off by default
// (autofailover.require_leader_lease): a single monitor behaves as before.
// Plain C-style functions; the ones that raise do so from plain frames.
#pragma once

#include <cstdint>

namespace autofailover_ext {

// From _PG_init: the GUC, the shared memory and the pre-commit check.
void define_leader_lease();

// True when decisions may be taken now: the lease is not required, or it is
// granted and its deadline has not passed.
bool leader_lease_allows_decisions();

// ERROR (SQLSTATE 55000) naming `what` when decisions may not be taken now;
// otherwise remembers that this transaction writes a decision, so that its
// commit is refused if the lease runs out before it.
void require_leader_lease(const char* what);

// Start of the current leadership (microseconds since the Unix epoch), or 0
// when the lease is not required or was never granted: the decision function's
// "monitor started" time, so startup_grace_period counts from a takeover.
std::int64_t leader_since_unix_us();

}  // namespace autofailover_ext
