// What the keeper's HTTP endpoint answers from: a copy of the loop's last
// observation, published under a mutex, so a health check never waits on
// Postgres or the monitor. The status decisions are pure (unit tested).
#pragma once

#include "libautofailover/group_snapshot.h"
#include "libautofailover/node_state.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace autofailover::keeper {

struct NodeObservation {
    bool published = false;  // false until the loop's first observation
    std::string node;
    std::string formation;
    NodeState reported = NodeState::Init;
    NodeState goal = NodeState::Init;
    bool pg_running = false;
    bool pg_accepting = false;  // SQL answered
    bool in_recovery = false;
    bool wal_receiver_streaming = false;
    Lsn lsn = 0;
    // Standby: primary LSN (as last reported to the monitor) minus ours; empty when unknown.
    std::optional<std::int64_t> lag_bytes;
    // Standby: how stale its replayed data may be (replay_time_lag); empty when unknown.
    std::optional<std::chrono::milliseconds> replay_lag;
    // Writable primary: when it must stop taking writes (the write lease). Empty: never
    // (no standby to fail over to).
    std::optional<TimePoint> lease_deadline;
    bool fenced = false;  // fenced itself and not yet told otherwise
    std::optional<TimePoint> last_monitor_contact;
    TimePoint observed_at{};  // wall clock of the observation (liveness)
    // The primary as this node knows it (itself when writable, else the monitor's other
    // nodes); empty when unknown. For hooks.
    std::string primary_name;
    std::string primary_host;
    int primary_port = 0;
};

// `?lag=` bound: bytes ("1048576", "16MB") or a duration ("5s", "500ms").
struct LagBound {
    std::optional<std::int64_t> bytes;
    std::optional<std::chrono::milliseconds> duration;
};
// Empty on malformed input.
std::optional<LagBound> parse_lag_bound(const std::string& text);

// Replay lag of a standby, as an upper bound on how old its data is: 0 while every
// received WAL byte is replayed (an idle primary is no lag); else the age of the
// newest of the last replayed commit and the last moment replay was seen caught up
// (`since_caught_up`), so a write after a long idle period is not counted as that
// whole period. Empty when neither is known (fails every duration bound).
std::optional<std::chrono::milliseconds> replay_time_lag(bool caught_up,
                                                         std::optional<std::chrono::milliseconds> last_commit_age,
                                                         std::optional<std::chrono::milliseconds> since_caught_up);

// Does the observation allow writes right now (primary, lease live, not fenced/draining)?
bool serves_writes(const NodeObservation& o, TimePoint now);
// Streaming standby within `bound` (no bound: any lag). An unknown lag exceeds every bound.
bool serves_reads_as_replica(const NodeObservation& o, const std::optional<LagBound>& bound);

// HTTP status code of a GET on `path` (/primary, /replica, /read-only, /health,
// /liveness, /readiness); 404 for anything else. `liveness_bound`: how old the
// last observation may be before the keeper counts as stuck.
int endpoint_status(const std::string& path, const NodeObservation& o, const std::optional<LagBound>& bound,
                    TimePoint now, std::chrono::milliseconds liveness_bound);

}  // namespace autofailover::keeper
