#include "monitor_ext/group_decision.h"

#include "monitor_ext/core_bridge.h"
#include "monitor_ext/group_store.h"
#include "monitor_ext/leader_lease.h"
#include "monitor_ext/metrics.h"
#include "monitor_ext/pg_include.h"

namespace autofailover_ext {

using autofailover_bridge::BridgeResult;
using autofailover_bridge::Outcome;

void decide_for_keeper(const char* formation, int group_id, std::int64_t node_id, MemoryContext answer_context,
                       KeeperAnswer* out) {
    const TimestampTz decision_started = GetCurrentTimestamp();
    autofailover_bridge::GroupInput* group =
        static_cast<autofailover_bridge::GroupInput*>(palloc0(sizeof(autofailover_bridge::GroupInput)));
    load_group(formation, group_id, 0, group);
    autofailover_bridge::DecisionOutput* decision = new_decision_output(group->node_count);
    int goal_changes = 0;
    bool steady = false;
    if (leader_lease_allows_decisions()) {
        BridgeResult decided = autofailover_bridge::run_decide(*group, *decision);
        if (decided.outcome == Outcome::NeedMoreText) {
            grow_text(&decision->text);
            decided = autofailover_bridge::run_decide(*group, *decision);
        }
        raise_if_failed(decided);
        goal_changes = store_decision(group, decision);
        if (goal_changes == 0 && node_id != 0 && decision->waiting_reason[0] == '\0') {
            BridgeResult checked = autofailover_bridge::group_is_steady(*group, steady);
            raise_if_failed(checked);
        }
        // Load + core + store, the time a keeper's report or a worker round waits for its decision.
        count_decision(GetCurrentTimestamp() - decision_started);
    } else {
        // Replicated monitors, lease not held (docs/monitor-ha.md): the heartbeat the
        // caller stored stays, the keeper gets the stored goal, nothing is decided.
        decision->waiting_reason = "no decision: this monitor does not hold the leader lease";
    }

    autofailover_bridge::KeeperView* view = new_keeper_view();
    BridgeResult viewed = autofailover_bridge::keeper_view(*group, node_id, *view);
    if (viewed.outcome == Outcome::NeedMoreText) {
        grow_text(&view->text);
        viewed = autofailover_bridge::keeper_view(*group, node_id, *view);
    }
    raise_if_failed(viewed);

    const int self = find_row(group, node_id);
    const int primary = view->has_primary ? find_row(group, view->primary_node_id) : -1;
    const int upstream = view->has_upstream ? find_row(group, view->upstream_node_id) : -1;
    *out = KeeperAnswer{};
    out->has_self = self >= 0;
    if (self >= 0) {
        out->goal_state = MemoryContextStrdup(answer_context, group->nodes[self].goal_state);
        out->candidate_priority = group->nodes[self].candidate_priority;
        out->replication_quorum = group->nodes[self].replication_quorum;
    }
    out->has_primary = primary >= 0;
    if (primary >= 0) {
        out->primary_node_id = group->nodes[primary].node_id;
        out->primary_host = MemoryContextStrdup(answer_context, group->nodes[primary].host);
        out->primary_port = group->nodes[primary].port;
    }
    out->synchronous_standby_names = MemoryContextStrdup(answer_context, view->synchronous_standby_names);
    out->has_upstream = upstream >= 0;
    if (upstream >= 0) {
        out->upstream_host = MemoryContextStrdup(answer_context, group->nodes[upstream].host);
        out->upstream_port = group->nodes[upstream].port;
        out->upstream_lsn = group->nodes[upstream].lsn;
    }
    out->waiting_reason = MemoryContextStrdup(answer_context, decision->waiting_reason);
    out->network_partition_timeout_ms = group->settings.network_partition_timeout_ms;
    out->goal_changes = goal_changes;
    out->steady = steady;
}

void fill_peer_columns(const KeeperAnswer& answer, Datum* values, bool* nulls) {
    nulls[3] = nulls[4] = nulls[5] = !answer.has_primary;
    values[3] = Int64GetDatum(answer.primary_node_id);
    values[4] = answer.has_primary ? CStringGetTextDatum(answer.primary_host) : (Datum)0;
    values[5] = Int32GetDatum(answer.primary_port);
    values[6] = CStringGetTextDatum(answer.synchronous_standby_names);
    nulls[7] = nulls[8] = nulls[9] = !answer.has_upstream;
    values[7] = answer.has_upstream ? CStringGetTextDatum(answer.upstream_host) : (Datum)0;
    values[8] = Int32GetDatum(answer.upstream_port);
    values[9] = LSNGetDatum(answer.upstream_lsn);
}

}  // namespace autofailover_ext
