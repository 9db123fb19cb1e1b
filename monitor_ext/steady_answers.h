// Answers to steady heartbeats, from shared memory (docs/benchmarks.md, "Steady
// heartbeats"). In a steady group (libautofailover/steady_group.h) a keeper's
// report that changes only its time and LSNs cannot change any decision, so
// node_active answers it from here: no SPI, no row lock, no WAL. The heartbeat
// itself (time, LSN, streaming flush LSNs) is kept here too, and every reader of
// those columns overlays it (load_group, the health worker, the SQL views).
//
// Correctness: a cached answer carries the generations (one global, one per
// group slot) read before the snapshot of the decision that produced it. Every
// write that can change a decision input bumps them twice, from a trigger (before
// commit: covers rollbacks) and after its commit (covers a decision whose snapshot
// predates the commit). A generation mismatch sends the call down the full path.
// Plain C style: no C++ object with a destructor, so elog(ERROR) skips nothing.
#pragma once

#include "monitor_ext/core_bridge.h"

#include <cstdint>

extern "C" {
#include "postgres.h"
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "utils/array.h"
}

namespace autofailover_ext {

// A primary's report names at most this many streaming standbys for its answer to be cached.
constexpr int kSteadyMaxStreaming = 8;

// What a keeper reported; the fast path requires every field but the LSNs to equal the cached ones.
struct SteadyReport {
    const char* formation;
    const char* reported_state;
    bool pg_is_running;
    int timeline;
    XLogRecPtr lsn;
    const char* sync_state;
    int streaming_count;  // -1: more than kSteadyMaxStreaming
    std::int64_t streaming_ids[kSteadyMaxStreaming];
    XLogRecPtr streaming_flush_lsns[kSteadyMaxStreaming];
};

// The answer columns of node_active for a steady group (no upstream: no fast_forward there).
struct SteadyAnswer {
    char goal_state[32];
    int candidate_priority;
    bool replication_quorum;
    bool has_primary;
    std::int64_t primary_node_id;
    char primary_host[256];
    int primary_port;
    char synchronous_standby_names[256];
    int network_partition_timeout_ms;
    std::int64_t client_access_version;
};

struct SteadyGenerations {
    std::uint64_t global;
    std::uint64_t group;
};

// From _PG_init: the autofailover.steady_answer_slots GUC and the shared memory.
void define_steady_answers();

// Fills `report` from node_active's arguments (arrays already validated).
void steady_report_from_arrays(SteadyReport* report, ArrayType* streaming, ArrayType* streaming_lsns);

// The fast path: true when the node's cached answer still holds for `report` in this
// session; then the heartbeat is recorded here and `answer` filled.
bool answer_steady_heartbeat(std::int64_t node_id, const SteadyReport& report, SteadyAnswer* answer);

// The full path: node_active is about to store this node's report (the nodes trigger
// then knows the heartbeat columns it writes are the keeper's own).
void begin_storing_report(std::int64_t node_id);
void end_storing_report();
// The full path stored `report`: keep its heartbeat here (readers overlay it), and the
// node's group (a change of its health then voids that group's answers only).
void remember_heartbeat(std::int64_t node_id, int group_id, const SteadyReport& report);
// Read before the decision's snapshot: the generations a cached answer is valid for.
SteadyGenerations read_steady_generations(const char* formation, int group_id);
// Caches the answer of a decision that changed nothing in a steady group, for this
// session's role (an operator's is checked again on every use: membership may be revoked).
void remember_steady_answer(std::int64_t node_id, int group_id, const SteadyGenerations& generations,
                            const SteadyReport& report, const SteadyAnswer& answer, bool as_operator);

// Overlay for load_group: the node's latest heartbeat when newer than `last_report_us`
// (0: none). Returns false when there is none; `flush_lsns` gets `count` entries when
// the stored streaming ids equal `ids`.
bool latest_heartbeat(std::int64_t node_id, TimestampTz stored_last_report, bool has_stored, TimestampTz* at,
                      XLogRecPtr* lsn, const std::int64_t* ids, std::size_t count, std::uint64_t* flush_lsns);

}  // namespace autofailover_ext
