// One decision for a group and what the keeper of one of its nodes gets back:
// load (SPI), the pure core, store, the keeper's view. Shared by _decide (the
// SQL API) and node_active (the keepers' hot path). Plain C-style code for
// callers connected to SPI and holding the group's decision lock.
#pragma once
#include <cstdint>

extern "C" {
#include "postgres.h"
#include "utils/palloc.h"
}

namespace autofailover_ext {

// Texts live in the memory context passed to decide_for_keeper; a field whose
// has_ flag is false is NULL in SQL.
struct KeeperAnswer {
    bool has_self;
    const char* goal_state;
    int candidate_priority;
    bool replication_quorum;
    bool has_primary;
    std::int64_t primary_node_id;
    const char* primary_host;
    int primary_port;
    const char* synchronous_standby_names;
    bool has_upstream;
    const char* upstream_host;
    int upstream_port;
    std::uint64_t upstream_lsn;
    const char* waiting_reason;
    int network_partition_timeout_ms;
    int goal_changes;
    // The group is steady after a decision that changed nothing (libautofailover/steady_group.h):
    // the next heartbeats of its nodes may be answered from shared memory.
    bool steady;
};

// Decides (formation, group_id) when the leader lease allows it, stores the
// result and fills `out` for node_id (0: the group-wide parts only).
void decide_for_keeper(const char* formation, int group_id, std::int64_t node_id, MemoryContext answer_context,
                       KeeperAnswer* out);

// The result columns 3-9 that _decide and node_active share: primary_node_id,
// primary_host, primary_port, synchronous_standby_names, upstream_host,
// upstream_port, upstream_lsn. Texts are palloc'd in the current context.
void fill_peer_columns(const KeeperAnswer& answer, Datum* values, bool* nulls);

}  // namespace autofailover_ext
