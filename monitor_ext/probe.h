// Non-blocking libpq probes of many Postgres servers at once, multiplexed on
// one WaitEventSet with the worker's latch. Each probe has its own deadlines and
// outlives the round that started it: a node that never answers costs its own
// probe time, not the other nodes' (docs/security.md, "Health probe").
#pragma once

#include "monitor_ext/monitor_settings.h"

#include <cstddef>
#include <cstdint>

namespace autofailover_ext {

enum class ProbeResult { Pending = 0, Up = 1, Down = 2 };

struct ProbeTarget {
    std::int64_t node_id;
    const char* host;
    int port;
    ProbeResult result;  // out; Pending: its probe still runs and reports in a later call
    std::int64_t duration_us;  // out with a result: from the probe's start to its verdict, retries included
};

// What a failed connection attempt learnt from the server, from libpq's
// structured state and the protocol messages only (never from message text).
struct FailedConnection {
    char sqlstate[6];     // the server's ErrorResponse SQLSTATE, "" when none was seen
    bool auth_requested;  // the server's first reply to the startup packet was an Authentication message
    bool needs_password;  // PQconnectionNeedsPassword(): the server asked for a password we do not have
};

// Up when the server answered in the PostgreSQL protocol with anything but
// "cannot serve now" (SQLSTATE class 57: starting up, shutting down, recovery).
ProbeResult classify_failed_connection(const FailedConnection& failure);

// The probes running in the health-check worker; lives as long as the worker.
struct ProbeEngine;
ProbeEngine* create_probe_engine();

// One round. Results of probes that finished since the last call are handed to
// their targets; every other target without a probe running gets one. Returns
// once each probe started here has a result, or at `wait_until` (a timestamp):
// probes still running then go on, on their own deadlines, and report later.
// Targets are matched to running probes by node id, host and port.
void probe_round(ProbeEngine* engine, ProbeTarget* targets, std::size_t count, const ProbeSettings& settings, std::int64_t wait_until);

// Between rounds: keeps the running probes moving until `until`. Returns early,
// true, when a target of the last probe_round (whose array must still be alive)
// got its result, so the worker can store it at once; false at `until` or when
// the latch was set.
bool probe_idle(ProbeEngine* engine, const ProbeSettings& settings, std::int64_t until);

// Drops every running probe (the extension was dropped).
void probe_abandon_all(ProbeEngine* engine);

}  // namespace autofailover_ext
