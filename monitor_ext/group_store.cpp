// SPI side of a decision: load the group snapshot into plain rows, store the
// assignments. No C++ object with a destructor lives in these frames, so an
// elog(ERROR) from SPI longjmps over nothing that needs unwinding.
#include "monitor_ext/group_store.h"

#include "monitor_ext/leader_lease.h"
#include "monitor_ext/monitor_settings.h"
#include "monitor_ext/pg_include.h"
#include "monitor_ext/steady_answers.h"

namespace autofailover_ext {
namespace {

using autofailover_bridge::DecisionOutput;
using autofailover_bridge::GroupInput;
using autofailover_bridge::NodeRow;

constexpr std::int64_t kUnixToPostgresEpochUs =
    static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

// Plans are prepared once per backend and kept: node_active runs them on every call.
SPIPlanPtr load_nodes_plan = nullptr;
SPIPlanPtr load_formation_plan = nullptr;
SPIPlanPtr store_goal_plan = nullptr;
SPIPlanPtr store_waiting_plan = nullptr;
SPIPlanPtr record_event_plan = nullptr;

const char* text_column(HeapTuple tuple, TupleDesc desc, int column) {
    bool isnull = false;
    Datum value = SPI_getbinval(tuple, desc, column, &isnull);
    return isnull ? "" : TextDatumGetCString(value);
}

std::int64_t int64_column(HeapTuple tuple, TupleDesc desc, int column, bool* isnull) {
    Datum value = SPI_getbinval(tuple, desc, column, isnull);
    return *isnull ? 0 : DatumGetInt64(value);
}

void notify_change(const char* formation, int group_id, std::int64_t node_id, const char* node_name,
                   const char* reported, const char* goal, const char* reason, const char* rule) {
    StringInfoData payload;
    initStringInfo(&payload);
    appendStringInfoString(&payload, "{\"formation\":");
    escape_json(&payload, formation);
    appendStringInfo(&payload, ",\"group\":%d,\"node_id\":" INT64_FORMAT ",\"node\":", group_id, node_id);
    escape_json(&payload, node_name);
    appendStringInfoString(&payload, ",\"reported\":");
    escape_json(&payload, reported);
    appendStringInfoString(&payload, ",\"goal\":");
    escape_json(&payload, goal);
    appendStringInfoString(&payload, ",\"reason\":");
    escape_json(&payload, reason);
    appendStringInfoString(&payload, ",\"rule\":");
    escape_json(&payload, rule);
    appendStringInfoChar(&payload, '}');
    Async_Notify("autofailover_state", payload.data);
    ereport(LOG, (errmsg("autofailover: formation=%s group=%d node=%s state=%s goal=%s rule=%s reason=%s",
                         formation, group_id, node_name, reported, goal, rule[0] ? rule : "-", reason)));
}

// One int8-like array column (bigint[] or pg_lsn[], both 8 bytes by value) into palloc'd memory.
std::size_t int8_array_column(HeapTuple tuple, TupleDesc desc, int column, Oid element_type, Datum** elements) {
    bool isnull = false;
    Datum value = SPI_getbinval(tuple, desc, column, &isnull);
    *elements = nullptr;
    if (isnull) return 0;
    bool* nulls = nullptr;
    int count = 0;
    deconstruct_array(DatumGetArrayTypeP(value), element_type, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, elements, &nulls,
                      &count);
    return static_cast<std::size_t>(count);
}

// streaming_standbys / streaming_flush_lsns (columns 17, 18); the table's CHECK keeps them the same length.
void load_streaming(HeapTuple tuple, TupleDesc desc, NodeRow* row) {
    Datum* ids = nullptr;
    Datum* lsns = nullptr;
    const std::size_t id_count = int8_array_column(tuple, desc, 17, INT8OID, &ids);
    const std::size_t lsn_count = int8_array_column(tuple, desc, 18, PG_LSNOID, &lsns);
    const std::size_t count = id_count < lsn_count ? id_count : lsn_count;
    std::int64_t* out_ids = static_cast<std::int64_t*>(palloc0(sizeof(std::int64_t) * (count + 1)));
    std::uint64_t* out_lsns = static_cast<std::uint64_t*>(palloc0(sizeof(std::uint64_t) * (count + 1)));
    for (std::size_t i = 0; i < count; ++i) {
        out_ids[i] = DatumGetInt64(ids[i]);
        out_lsns[i] = DatumGetLSN(lsns[i]);
    }
    row->streaming_ids = out_ids;
    row->streaming_flush_lsns = out_lsns;
    row->streaming_count = count;
}

// The node's latest heartbeat when node_active answered it from shared memory
// (steady_answers.h): the table's last_report and LSNs are older then.
void overlay_heartbeat(NodeRow* row) {
    TimestampTz at = 0;
    XLogRecPtr lsn = 0;
    std::uint64_t* flush_lsns = static_cast<std::uint64_t*>(palloc0(sizeof(std::uint64_t) * (row->streaming_count + 1)));
    for (std::size_t i = 0; i < row->streaming_count; ++i) flush_lsns[i] = row->streaming_flush_lsns[i];
    const TimestampTz stored = row->has_last_report ? row->last_report_us - kUnixToPostgresEpochUs : 0;
    if (!latest_heartbeat(row->node_id, stored, row->has_last_report, &at, &lsn, row->streaming_ids,
                          row->streaming_count, flush_lsns))
        return;
    row->has_last_report = true;
    row->last_report_us = to_unix_us(at);
    row->lsn = lsn;
    row->streaming_flush_lsns = flush_lsns;
}

}  // namespace

SPIPlanPtr prepare_once(SPIPlanPtr* plan, const char* sql, int nargs, Oid* types) {
    if (*plan == nullptr) {
        SPIPlanPtr prepared = SPI_prepare(sql, nargs, types);
        if (prepared == nullptr) elog(ERROR, "autofailover: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(prepared);
        *plan = prepared;
    }
    return *plan;
}

const char* quoted_prefix(const char* value) {
    const int length = static_cast<int>(strlen(value));
    return pnstrdup(value, pg_mbcharcliplen(value, length, 80));
}

std::int64_t to_unix_us(std::int64_t timestamptz) { return timestamptz + kUnixToPostgresEpochUs; }

void load_group(const char* formation, int group_id, std::int64_t exclude_node, GroupInput* out) {
    Oid formation_types[2] = {TEXTOID, INT4OID};
    Datum formation_args[2] = {CStringGetTextDatum(formation), Int32GetDatum(group_id)};
    SPIPlanPtr formation_plan = prepare_once(
        &load_formation_plan,
        "SELECT f.number_sync_standbys, g.waiting_reason, g.adoption_deadline FROM autofailover.formations f "
        "LEFT JOIN autofailover.groups g ON g.formation_id = f.formation_id AND g.group_id = $2 "
        "WHERE f.formation_id = $1",
        2, formation_types);
    if (SPI_execute_plan(formation_plan, formation_args, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "autofailover: loading formation failed");
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("formation \"%s\" does not exist", formation),
                        errhint("Create it with autofailover.create_formation().")));
    bool isnull = false;
    const int number_sync_standbys =
        DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    const char* stored_waiting_reason = text_column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
    const std::int64_t adoption_deadline = int64_column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
    const bool has_adoption_deadline = !isnull;

    Oid node_types[3] = {TEXTOID, INT4OID, INT8OID};
    Datum node_args[3] = {CStringGetTextDatum(formation), Int32GetDatum(group_id), Int64GetDatum(exclude_node)};
    SPIPlanPtr nodes_plan = prepare_once(&load_nodes_plan,
                                         "SELECT n.node_id, n.node_name, n.host, n.port, n.reported_state::text, "
                                         "n.goal_state::text, n.goal_assigned_at, n.last_report, n.pg_is_running, "
                                         "n.timeline, n.lsn, n.sync_state, coalesce(h.health, 'unknown'), "
                                         "h.last_health_check, n.candidate_priority, n.replication_quorum, "
                                         "n.streaming_standbys, n.streaming_flush_lsns, v.vetoed_at "
                                         "FROM autofailover.nodes n LEFT JOIN autofailover.node_health h "
                                         "USING (node_id) LEFT JOIN autofailover.promotion_vetoes v USING (node_id) "
                                         "WHERE n.formation_id = $1 AND n.group_id = $2 AND n.node_id <> $3 "
                                         "ORDER BY n.node_id",
                                         3, node_types);
    if (SPI_execute_plan(nodes_plan, node_args, nullptr, true, 0) != SPI_OK_SELECT)
        elog(ERROR, "autofailover: loading group failed");

    const std::size_t count = SPI_processed;
    NodeRow* rows = static_cast<NodeRow*>(palloc0(sizeof(NodeRow) * (count > 0 ? count : 1)));
    TupleDesc desc = SPI_tuptable->tupdesc;
    for (std::size_t i = 0; i < count; ++i) {
        HeapTuple tuple = SPI_tuptable->vals[i];
        NodeRow* row = &rows[i];
        bool null = false;
        row->node_id = int64_column(tuple, desc, 1, &null);
        row->name = text_column(tuple, desc, 2);
        row->host = text_column(tuple, desc, 3);
        row->port = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &null));
        row->reported_state = text_column(tuple, desc, 5);
        row->goal_state = text_column(tuple, desc, 6);
        row->goal_assigned_at_us = to_unix_us(int64_column(tuple, desc, 7, &null));
        const std::int64_t last_report = int64_column(tuple, desc, 8, &null);
        row->has_last_report = !null;
        row->last_report_us = null ? 0 : to_unix_us(last_report);
        row->pg_is_running = DatumGetBool(SPI_getbinval(tuple, desc, 9, &null));
        row->timeline = DatumGetInt32(SPI_getbinval(tuple, desc, 10, &null));
        row->lsn = static_cast<std::uint64_t>(int64_column(tuple, desc, 11, &null));
        row->sync_state = text_column(tuple, desc, 12);
        row->health = text_column(tuple, desc, 13);
        const std::int64_t last_check = int64_column(tuple, desc, 14, &null);
        row->has_last_health_check = !null;
        row->last_health_check_us = null ? 0 : to_unix_us(last_check);
        row->candidate_priority = DatumGetInt32(SPI_getbinval(tuple, desc, 15, &null));
        row->replication_quorum = DatumGetBool(SPI_getbinval(tuple, desc, 16, &null));
        load_streaming(tuple, desc, row);
        overlay_heartbeat(row);
        const std::int64_t vetoed_at = int64_column(tuple, desc, 19, &null);
        row->has_promotion_vetoed_at = !null;
        row->promotion_vetoed_at_us = null ? 0 : to_unix_us(vetoed_at);
    }

    out->formation = pstrdup(formation);
    out->group_id = group_id;
    out->nodes = rows;
    out->node_count = count;
    out->settings = decision_settings(number_sync_standbys);
    out->now_us = to_unix_us(GetCurrentTimestamp());
    out->monitor_started_us = to_unix_us(PgStartTime);
    // A monitor that took over leads since then: the grace period counts from the takeover.
    const std::int64_t leader_since = leader_since_unix_us();
    if (leader_since > out->monitor_started_us) out->monitor_started_us = leader_since;
    out->stored_waiting_reason = stored_waiting_reason;
    out->has_adoption_deadline = has_adoption_deadline;
    out->adoption_deadline_us = has_adoption_deadline ? to_unix_us(adoption_deadline) : 0;
}

namespace {

// Enough for a usual decision; a larger answer (60 standbys named in synchronous_standby_names)
// asks for more (grow_text), which the regression test sync_names exercises.
constexpr std::size_t kInitialTextBytes = 1024;

autofailover_bridge::TextBuffer new_text_buffer(std::size_t capacity) {
    autofailover_bridge::TextBuffer text{};
    text.data = static_cast<char*>(palloc(capacity));
    text.capacity = capacity;
    return text;
}

}  // namespace

DecisionOutput* new_decision_output(std::size_t capacity) {
    // Room for two assignments per node: the core assigns each node at most
    // once per decision, the slack only guards against a core bug.
    const std::size_t slots = 2 * capacity + 2;
    DecisionOutput* out = static_cast<DecisionOutput*>(palloc0(sizeof(DecisionOutput)));
    out->assignments =
        static_cast<autofailover_bridge::AssignmentRow*>(palloc0(sizeof(autofailover_bridge::AssignmentRow) * slots));
    out->capacity = slots;
    out->waiting_reason = "";
    out->text = new_text_buffer(kInitialTextBytes);
    return out;
}

autofailover_bridge::KeeperView* new_keeper_view() {
    auto* view = static_cast<autofailover_bridge::KeeperView*>(palloc0(sizeof(autofailover_bridge::KeeperView)));
    view->synchronous_standby_names = "";
    view->text = new_text_buffer(kInitialTextBytes);
    return view;
}

void grow_text(autofailover_bridge::TextBuffer* text) {
    *text = new_text_buffer(text->needed > text->capacity ? text->needed : text->capacity);
}

int find_row(const GroupInput* group, std::int64_t node_id) {
    for (std::size_t i = 0; i < group->node_count; ++i)
        if (group->nodes[i].node_id == node_id) return static_cast<int>(i);
    return -1;
}

void record_state_event(const char* formation, int group_id, std::int64_t node_id, const char* node_name,
                        const char* reported, const char* goal, const char* reason) {
    Oid types[7] = {TEXTOID, INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID};
    SPIPlanPtr plan = prepare_once(&record_event_plan,
                                   "INSERT INTO autofailover.events (formation_id, node_id, node_name, group_id, "
                                   "reported_state, goal_state, description) VALUES ($1, $2, $3, $4, "
                                   "$5::autofailover.node_state, $6::autofailover.node_state, $7)",
                                   7, types);
    Datum args[7] = {CStringGetTextDatum(formation), Int64GetDatum(node_id), CStringGetTextDatum(node_name),
                     Int32GetDatum(group_id), CStringGetTextDatum(reported), CStringGetTextDatum(goal),
                     CStringGetTextDatum(reason)};
    if (SPI_execute_plan(plan, args, nullptr, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "autofailover: storing an event failed");
    notify_change(formation, group_id, node_id, node_name, reported, goal, reason, "");
}

int store_decision(GroupInput* group, const DecisionOutput* decision) {
    require_leader_lease("storing a decision");
    int changes = 0;
    Oid goal_types[3] = {INT8OID, TEXTOID, TEXTOID};
    SPIPlanPtr goal_plan = prepare_once(
        &store_goal_plan,
        "WITH changed AS (UPDATE autofailover.nodes SET goal_state = $2::autofailover.node_state, "
        "goal_assigned_at = clock_timestamp() WHERE node_id = $1 "
        "RETURNING formation_id, node_id, node_name, group_id, reported_state, goal_state) "
        "INSERT INTO autofailover.events (formation_id, node_id, node_name, group_id, reported_state, goal_state, "
        "description) SELECT formation_id, node_id, node_name, group_id, reported_state, goal_state, $3 FROM changed "
        "RETURNING node_name, reported_state::text",
        3, goal_types);
    for (std::size_t i = 0; i < decision->count; ++i) {
        const autofailover_bridge::AssignmentRow* assignment = &decision->assignments[i];
        const int row = find_row(group, assignment->node_id);
        if (row >= 0 && strcmp(group->nodes[row].goal_state, assignment->goal) == 0) continue;
        Datum args[3] = {Int64GetDatum(assignment->node_id), CStringGetTextDatum(assignment->goal),
                         CStringGetTextDatum(assignment->reason)};
        if (SPI_execute_plan(goal_plan, args, nullptr, false, 0) != SPI_OK_INSERT_RETURNING)
            elog(ERROR, "autofailover: storing goal state failed");
        if (SPI_processed != 1)
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("autofailover: the decision assigned a goal to node " INT64_FORMAT
                                   ", which is not in the group",
                                   assignment->node_id)));
        const char* node_name = text_column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        const char* reported = text_column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        notify_change(group->formation, group->group_id, assignment->node_id, node_name, reported, assignment->goal,
                      assignment->reason, assignment->rule);
        if (row >= 0) group->nodes[row].goal_state = pstrdup(assignment->goal);
        changes++;
    }

    if (group->stored_waiting_reason != nullptr && strcmp(group->stored_waiting_reason, decision->waiting_reason) == 0)
        return changes;
    Oid waiting_types[3] = {TEXTOID, INT4OID, TEXTOID};
    SPIPlanPtr waiting_plan = prepare_once(&store_waiting_plan,
                                           "UPDATE autofailover.groups SET waiting_reason = $3 "
                                           "WHERE formation_id = $1 AND group_id = $2 AND waiting_reason <> $3",
                                           3, waiting_types);
    Datum waiting_args[3] = {CStringGetTextDatum(group->formation), Int32GetDatum(group->group_id),
                             CStringGetTextDatum(decision->waiting_reason)};
    if (SPI_execute_plan(waiting_plan, waiting_args, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "autofailover: storing waiting reason failed");
    return changes;
}

void raise_if_failed(const autofailover_bridge::BridgeResult& result) {
    switch (result.outcome) {
        case autofailover_bridge::Outcome::Ok:
            return;
        case autofailover_bridge::Outcome::OperatorRefused:
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", result.message)));
            break;
        case autofailover_bridge::Outcome::InternalError:
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("autofailover core: %s", result.message)));
            break;
        case autofailover_bridge::Outcome::NeedMoreText:
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("autofailover core: its answer did not fit the buffer it asked for")));
            break;
    }
}

}  // namespace autofailover_ext
