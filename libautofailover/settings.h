// Formation-wide settings and every timeout the decision function uses. Each
// timeout is a named setting with a documented default (docs/settings.md); the
// monitor fills them from its GUCs, tests shorten them.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/lsn.h"

#include <chrono>

namespace autofailover {

struct Timeouts {
    // A keeper silent for this long (and whose Postgres fails the probes) is unhealthy.
    std::chrono::milliseconds node_considered_unhealthy_timeout{2500};
    // A primary keeper that reaches neither the monitor nor any standby for this
    // long fences its Postgres. The monitor hands this value to the keepers, so
    // both sides agree on it.
    std::chrono::milliseconds network_partition_timeout{1500};
    // Extra wait on top of network_partition_timeout before the monitor may
    // promote, so the old primary has surely fenced itself (clock skew, the
    // time it takes to stop Postgres).
    std::chrono::milliseconds fencing_margin{1000};
    // A primary whose keeper is silent this long AND whose Postgres fails the
    // probes is suspected: its standbys freeze (stop feeding its fencing clock)
    // and a candidate is chosen, so the fencing wait runs while the monitor
    // waits for node_considered_unhealthy_timeout. Only a declared failure
    // promotes; the standbys stream again when the primary reports or answers.
    // At node_considered_unhealthy_timeout or more: no early freeze. The default,
    // node_considered_unhealthy_timeout - network_partition_timeout, keeps a
    // wrongly suspected primary from fencing itself before it could be declared
    // failed (docs/settings.md, "Why these defaults").
    std::chrono::milliseconds primary_suspect_timeout{1000};
    // After the monitor starts, probe results are too fresh to condemn anyone.
    std::chrono::milliseconds startup_grace_period{5000};
    // A switchover whose candidate has not been promoted this long after the
    // primary was told to drain is abandoned: the old primary resumes.
    std::chrono::milliseconds switchover_timeout{10000};
    // A node whose pre_promote hook vetoed its promotion is not elected again for
    // this long (another candidate is, if one may be); then it is asked again.
    std::chrono::milliseconds promotion_veto_timeout{10000};
};

struct FormationSettings {
    // How many quorum standbys must acknowledge each commit. 0 means "prefer
    // availability": the primary may run without synchronous replication when no
    // quorum standby is healthy (the primary still uses ANY 1 while one is).
    int number_sync_standbys = 0;
    // A catching-up standby this close to the primary becomes secondary.
    Lsn enable_sync_wal_threshold = 16ull * 1024 * 1024;
    Timeouts timeouts;
};

}  // namespace autofailover
