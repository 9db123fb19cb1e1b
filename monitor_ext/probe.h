// Non-blocking libpq probes of many Postgres servers at once, multiplexed on
// one WaitEventSet with the worker's latch: a slow node never delays another.
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
    ProbeResult result;  // out
};

// Probes all targets (retries included); returns when each has a result.
// A server that answers, even with an authentication or "database does not
// exist" error, is Up; refused, timed out, starting up or shutting down is Down.
void probe_all(ProbeTarget* targets, std::size_t count, const ProbeSettings& settings);

// Exposed for the regression test of the classification rule.
ProbeResult classify_failed_connection(const char* error_message);

}  // namespace autofailover_ext
