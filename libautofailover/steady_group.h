// The gate of the monitor's node_active shortcut: in a steady group a keeper
// heartbeat that changes only times and LSNs cannot change the decision, so the
// monitor may answer from its cache instead of running decide(). Conservative:
// false whenever a rule of decide() could read something a heartbeat changes.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/group_snapshot.h"
#include "libautofailover/settings.h"

namespace autofailover {

// A group in which a keeper heartbeat that changes only times and LSNs
// (last_report, lsn, streaming flush LSNs, last_health_check, the clock) cannot
// change the decision nor any keeper's answer.
//
// The cached answer stays valid only while none of these change: every node's
// reported_state, goal_state, goal_assigned_at (the extension writes it only
// together with goal_state), pg_is_running, timeline, sync_state, the ids of the
// standbys the primary reports streaming, health, candidate_priority,
// replication_quorum, promotion vetoes; the node set; the formation settings;
// the group's adoption deadline; and the monitor's start time.
//
// One thing the cache does not keep up to date: when the primary's keeper goes
// silent while its Postgres answers the probes, decide() would set the
// informational waiting_reason "... silent but its Postgres answers the probes:
// no failover" (and never assign anything on it). See steady_group.cpp.
bool group_is_steady(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock);

}  // namespace autofailover
