// SPI load and store of one group, for callers already connected to SPI and
// holding the group's decision lock (see docs/api.md, "Locking"). Plain C-style
// code: everything it allocates is palloc'd, so an ERROR here unwinds nothing
// but PostgreSQL memory.
#pragma once

#include "monitor_ext/core_bridge.h"

#include <cstdint>

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

namespace autofailover_ext {

// The plan for `sql`, prepared on first use in this backend and kept (SPI_keepplan).
SPIPlanPtr prepare_once(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types);

// A palloc'd copy of `value` cut at 80 characters (not bytes), as the SQL API's messages quote names.
const char* quoted_prefix(const char* value);


// Fills `out` with the nodes of (formation, group_id) except `exclude_node`
// (0: none), the formation's settings and the monitor clock. ERROR when the
// formation does not exist.
void load_group(const char* formation, int group_id, std::int64_t exclude_node, autofailover_bridge::GroupInput* out);

autofailover_bridge::DecisionOutput* new_decision_output(std::size_t capacity);
autofailover_bridge::KeeperView* new_keeper_view();
// After Outcome::NeedMoreText: a buffer of exactly the size the core asked for.
void grow_text(autofailover_bridge::TextBuffer* text);

// Writes every goal change: nodes.goal_state, one events row with the core's
// reason, one NOTIFY autofailover_state; then the group's waiting_reason.
// Updates the loaded rows so the caller sees the new goals. Returns how many
// goals changed.
int store_decision(autofailover_bridge::GroupInput* group, const autofailover_bridge::DecisionOutput* decision);

// A change the core did not decide (a keeper reports a new state, a node is
// removed): one events row and one NOTIFY autofailover_state, as for a decision.
void record_state_event(const char* formation, int group_id, std::int64_t node_id, const char* node_name,
                        const char* reported, const char* goal, const char* reason);
// ERROR with the SQLSTATE matching the bridge outcome; returns when Ok.
void raise_if_failed(const autofailover_bridge::BridgeResult& result);

// Index of node_id in the loaded rows, or -1.
int find_row(const autofailover_bridge::GroupInput* group, std::int64_t node_id);

std::int64_t to_unix_us(std::int64_t timestamptz);

}  // namespace autofailover_ext
