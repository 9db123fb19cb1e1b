// Monitor-wide counters for autofailover.metrics() (docs/operations.md, "Metrics"):
// decisions taken and the time they took, probe results. They live in shared
// memory, so every backend and the health-check worker add to the same ones;
// they start at 0 when Postgres starts (Prometheus counters may reset).
// Plain C-style functions: atomics only, nothing that can elog(ERROR).
#pragma once

#include <cstdint>

namespace autofailover_ext {

// From _PG_init: requests and initialises the shared memory.
void define_metrics();

// One decision (autofailover._decide: load, core, store) that took `elapsed_us`.
void count_decision(std::int64_t elapsed_us);

// Probe results the health-check worker stored.
void count_probes(std::uint64_t up, std::uint64_t down);

}  // namespace autofailover_ext
