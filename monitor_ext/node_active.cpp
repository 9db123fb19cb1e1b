// autofailover.node_active(...): a keeper's report and its answer, the monitor's
// hot path (every node, every keeper period). In C with plans prepared once per
// backend, so a heartbeat costs a handful of index lookups, one row update and a
// decision on its group, not a PL/pgSQL frame per step (docs/benchmarks.md).
// Same contract as before (docs/api.md): validation, authorization (the keeper
// of this node, or an operator), the group's decision lock, the stale-session
// check, an event when the reported state changes, the decision, the answer.
// In a steady group, a report that only moves LSNs is answered before all that,
// from shared memory (steady_answers.h), with the last decision's answer.
// Plain C-style code: only trivially destructible values live in these frames,
// so an elog(ERROR) from SPI longjmps over nothing to destroy.
#include "monitor_ext/decision_lock.h"
#include "monitor_ext/group_decision.h"
#include "monitor_ext/group_store.h"
#include "monitor_ext/leader_lease.h"
#include "monitor_ext/library_version.h"
#include "monitor_ext/monitor_settings.h"
#include "monitor_ext/pg_include.h"
#include "monitor_ext/steady_answers.h"

extern "C" {
#include "utils/acl.h"
#include "utils/lsyscache.h"
}

#include <cstring>

namespace {

using autofailover_ext::prepare_once;
using autofailover_ext::quoted_prefix;

constexpr int kMaxStreamingStandbys = 1000;

SPIPlanPtr find_node_plan = nullptr;
SPIPlanPtr keeper_role_plan = nullptr;
SPIPlanPtr authorize_plan = nullptr;
SPIPlanPtr store_report_plan = nullptr;
SPIPlanPtr end_adoption_plan = nullptr;
SPIPlanPtr node_dropped_plan = nullptr;

void require_argument(FunctionCallInfo fcinfo, int n, const char* what) {
    if (PG_ARGISNULL(n))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be NULL", what)));
}

// One-dimensional, at most kMaxStreamingStandbys, no NULL; a NULL array is an empty one.
ArrayType* streaming_array(FunctionCallInfo fcinfo, int n, Oid element_type, int* count) {
    if (PG_ARGISNULL(n)) {
        *count = 0;
        return construct_empty_array(element_type);
    }
    ArrayType* array = PG_GETARG_ARRAYTYPE_P(n);
    *count = ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
    if (ARR_NDIM(array) > 1 || array_contains_nulls(array) || *count > kMaxStreamingStandbys) *count = -1;
    return array;
}

bool is_writable_state(const char* state) {
    static const char* const writable[] = {"single", "wait_primary", "primary", "join_primary", "apply_settings"};
    for (const char* name : writable)
        if (strcmp(state, name) == 0) return true;
    return false;
}

struct NodeRef {
    bool found;
    int group_id;
    // Formation client access (docs/clients.md): only its version; the keeper fetches the list
    // with formation_client_access() when the version differs from the one it applied.
    std::int64_t client_access_version;
    // How the session was authorized: as this node's keeper, or as an operator that is no
    // node's keeper (tests, benchmarks); the cached answer re-checks the latter on every use.
    bool as_keeper;
    bool as_operator;
};

// The node's group, after checking that the session may report for it: the keeper
// role stored with the node, or an operator that is no node's keeper. Any other case
// goes to autofailover._authorize, which raises with the API's wording.
NodeRef authorize_and_find(const char* formation, std::int64_t node_id) {
    Oid find_types[2] = {INT8OID, TEXTOID};
    Datum find_args[2] = {Int64GetDatum(node_id), CStringGetTextDatum(formation)};
    SPIPlanPtr find = prepare_once(&find_node_plan,
                                   "SELECT n.group_id, n.keeper_role, "
                                   "(SELECT coalesce(max(c.version), 0) FROM autofailover.formation_client_access c "
                                   "WHERE c.formation_id = $2) FROM autofailover.nodes n "
                                   "WHERE n.node_id = $1 AND n.formation_id = $2",
                                   2, find_types);
    if (SPI_execute_plan(find, find_args, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "autofailover: looking up the node failed");
    NodeRef node{SPI_processed == 1, 0, 0, false, false};
    bool authorized = false;
    const char* session_role = GetUserNameFromId(GetSessionUserId(), false);
    if (node.found) {
        bool isnull = false;
        node.group_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        node.client_access_version =
            DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
        const char* keeper_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        authorized = keeper_role != nullptr && strcmp(keeper_role, session_role) == 0;
        node.as_keeper = authorized;
    }
    if (!authorized && autofailover_ext::is_operator_session()) {
        Oid role_types[1] = {TEXTOID};
        Datum role_args[1] = {CStringGetTextDatum(session_role)};
        SPIPlanPtr keeper = prepare_once(&keeper_role_plan,
                                         "SELECT 1 FROM autofailover.nodes n WHERE n.keeper_role = $1", 1, role_types);
        if (SPI_execute_plan(keeper, role_args, nullptr, true, 1) != SPI_OK_SELECT)
            elog(ERROR, "autofailover: looking up the session's role failed");
        authorized = SPI_processed == 0;
        node.as_operator = authorized;
    }
    if (!authorized) {
        SPIPlanPtr authorize = prepare_once(&authorize_plan, "SELECT autofailover._authorize($2, $1)", 2, find_types);
        if (SPI_execute_plan(authorize, find_args, nullptr, true, 1) != SPI_OK_SELECT)
            elog(ERROR, "autofailover: authorizing the session failed");
    }
    if (!node.found)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("node " INT64_FORMAT " is not registered in formation \"%s\"", node_id,
                               quoted_prefix(formation)),
                        errhint("Register it with autofailover.register_node().")));
    return node;
}

struct StoredReport {
    const char* old_reported;
    const char* goal;
    const char* node_name;
};

// A keeper gives up on a call at its timeout and reconnects; the given-up request
// may still be served later, after newer reports: stale state and streaming
// evidence (found by the simulation, docs/fsm.md). Its session is older than the
// one that stored the last report, so it is refused. A stored session in the
// future (the monitor's clock stepped back, or another monitor stored it) refuses
// nothing. The session start is this backend's (pg_stat_activity.backend_start).
StoredReport store_report(std::int64_t node_id, Datum reported, Oid state_type, bool running, int timeline,
                          XLogRecPtr lsn, const char* sync_state, ArrayType* streaming, ArrayType* streaming_lsns) {
    Oid types[9] = {INT8OID, state_type, BOOLOID, INT4OID, PG_LSNOID, TEXTOID, INT8ARRAYOID, PG_LSNARRAYOID,
                    TIMESTAMPTZOID};
    SPIPlanPtr plan = prepare_once(
        &store_report_plan,
        "UPDATE autofailover.nodes n SET reported_state = $2, pg_is_running = $3, timeline = $4, lsn = $5, "
        "sync_state = $6, streaming_standbys = $7, streaming_flush_lsns = $8, last_report = clock_timestamp(), "
        "report_session = $9 "
        "FROM (SELECT o.node_id, o.reported_state, o.report_session FROM autofailover.nodes o "
        "WHERE o.node_id = $1) old "
        "WHERE n.node_id = old.node_id "
        "AND NOT coalesce(old.report_session > $9 AND old.report_session <= clock_timestamp(), false) "
        "RETURNING old.reported_state::text, n.goal_state::text, n.node_name",
        9, types);
    Datum args[9] = {Int64GetDatum(node_id),        reported,
                     BoolGetDatum(running),         Int32GetDatum(timeline),
                     LSNGetDatum(lsn),              CStringGetTextDatum(sync_state),
                     PointerGetDatum(streaming),    PointerGetDatum(streaming_lsns),
                     TimestampTzGetDatum(MyStartTimestamp)};
    autofailover_ext::begin_storing_report(node_id);
    if (SPI_execute_plan(plan, args, nullptr, false, 1) != SPI_OK_UPDATE_RETURNING)
        elog(ERROR, "autofailover: storing the report failed");
    autofailover_ext::end_storing_report();
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("stale report: a newer session of this node's keeper has reported since")));
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    return StoredReport{SPI_getvalue(row, desc, 1), SPI_getvalue(row, desc, 2), SPI_getvalue(row, desc, 3)};
}

// The group has a primary again (adopted, or elected after the adoption grace):
// the adoption guard is over (docs/monitor-ha.md, M6).
void end_adoption_guard(const char* formation, int group_id) {
    Oid types[2] = {TEXTOID, INT4OID};
    Datum args[2] = {CStringGetTextDatum(formation), Int32GetDatum(group_id)};
    SPIPlanPtr plan = prepare_once(&end_adoption_plan,
                                   "UPDATE autofailover.groups g SET adoption_deadline = NULL "
                                   "WHERE g.formation_id = $1 AND g.group_id = $2 AND g.adoption_deadline IS NOT NULL",
                                   2, types);
    if (SPI_execute_plan(plan, args, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "autofailover: ending the adoption guard failed");
}

// The keeper confirmed its removal: forget the node, let the others adapt (SQL, rare).
void forget_dropped_node(const char* formation, std::int64_t node_id) {
    Oid types[2] = {TEXTOID, INT8OID};
    Datum args[2] = {CStringGetTextDatum(formation), Int64GetDatum(node_id)};
    SPIPlanPtr plan = prepare_once(&node_dropped_plan, "SELECT autofailover._forget_dropped_node($1, $2)", 2, types);
    if (SPI_execute_plan(plan, args, nullptr, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "autofailover: removing the dropped node failed");
}

// node_active's result row, in the current memory context.
HeapTuple answer_tuple(TupleDesc result_desc, Oid state_type, const autofailover_ext::KeeperAnswer& answer,
                       bool dropped, bool monitor_leads, std::int64_t client_access_version) {
    Datum values[13];
    bool nulls[13] = {};
    nulls[0] = !answer.has_self;
    values[0] = nulls[0] ? (Datum)0 : DirectFunctionCall2(enum_in, CStringGetDatum(answer.goal_state),
                                                          ObjectIdGetDatum(state_type));
    values[1] = Int32GetDatum(answer.candidate_priority);
    nulls[1] = !answer.has_self || dropped;
    values[2] = BoolGetDatum(answer.replication_quorum);
    nulls[2] = !answer.has_self || dropped;
    autofailover_ext::fill_peer_columns(answer, values, nulls);
    values[10] = Int32GetDatum(answer.network_partition_timeout_ms);
    values[11] = BoolGetDatum(monitor_leads);
    values[12] = Int64GetDatum(client_access_version);
    return heap_form_tuple(result_desc, values, nulls);
}

// Caches the answer of a steady group's decision, when its texts fit (steady_answers.h).
void remember_answer(std::int64_t node_id, int group_id, const autofailover_ext::SteadyGenerations& generations,
                     const autofailover_ext::SteadyReport& report, const autofailover_ext::KeeperAnswer& answer,
                     std::int64_t client_access_version, bool as_operator) {
    autofailover_ext::SteadyAnswer cached{};
    if (!answer.has_self || answer.has_upstream || strlen(answer.goal_state) >= sizeof(cached.goal_state) ||
        (answer.has_primary && strlen(answer.primary_host) >= sizeof(cached.primary_host)) ||
        strlen(answer.synchronous_standby_names) >= sizeof(cached.synchronous_standby_names))
        return;
    strlcpy(cached.goal_state, answer.goal_state, sizeof(cached.goal_state));
    cached.candidate_priority = answer.candidate_priority;
    cached.replication_quorum = answer.replication_quorum;
    cached.has_primary = answer.has_primary;
    cached.primary_node_id = answer.primary_node_id;
    if (answer.has_primary) strlcpy(cached.primary_host, answer.primary_host, sizeof(cached.primary_host));
    cached.primary_port = answer.primary_port;
    strlcpy(cached.synchronous_standby_names, answer.synchronous_standby_names,
            sizeof(cached.synchronous_standby_names));
    cached.network_partition_timeout_ms = answer.network_partition_timeout_ms;
    cached.client_access_version = client_access_version;
    autofailover_ext::remember_steady_answer(node_id, group_id, generations, report, cached, as_operator);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_node_active);

// node_active(formation, node_id, reported_state, pg_is_running, timeline, lsn,
// sync_state, streaming_standbys, streaming_flush_lsns) → the keeper's answer.
PGDLLEXPORT Datum autofailover_node_active(PG_FUNCTION_ARGS) {
    autofailover_ext::check_library_version();
    require_argument(fcinfo, 0, "formation");
    require_argument(fcinfo, 1, "node_id");
    require_argument(fcinfo, 2, "reported_state");
    require_argument(fcinfo, 3, "pg_is_running");
    require_argument(fcinfo, 4, "timeline");
    require_argument(fcinfo, 5, "lsn");
    const char* formation = text_to_cstring(PG_GETARG_TEXT_PP(0));
    const std::int64_t node_id = PG_GETARG_INT64(1);
    const Datum reported_datum = PG_GETARG_DATUM(2);
    const Oid state_type = get_fn_expr_argtype(fcinfo->flinfo, 2);
    const char* reported = DatumGetCString(DirectFunctionCall1(enum_out, reported_datum));
    const bool running = PG_GETARG_BOOL(3);
    const int timeline = PG_GETARG_INT32(4);
    const XLogRecPtr lsn = PG_GETARG_LSN(5);
    if (timeline < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid timeline %d", timeline)));
    const char* sync_state = PG_ARGISNULL(6) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(6));
    if (strcmp(sync_state, "") != 0 && strcmp(sync_state, "sync") != 0 && strcmp(sync_state, "quorum") != 0 &&
        strcmp(sync_state, "async") != 0 && strcmp(sync_state, "potential") != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid sync_state \"%s\": one of sync, quorum, async, potential or empty expected",
                               quoted_prefix(sync_state))));
    int streaming_count = 0;
    int lsn_count = 0;
    ArrayType* streaming = streaming_array(fcinfo, 7, INT8OID, &streaming_count);
    ArrayType* streaming_lsns = streaming_array(fcinfo, 8, PG_LSNOID, &lsn_count);
    if (streaming_count < 0 || lsn_count < 0 || streaming_count != lsn_count)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid streaming standbys: two one-dimensional arrays of the same length, no NULL")));

    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "autofailover.node_active must return a composite type");
    result_desc = BlessTupleDesc(result_desc);

    autofailover_ext::SteadyReport report{};
    report.formation = formation;
    report.reported_state = reported;
    report.pg_is_running = running;
    report.timeline = timeline;
    report.lsn = lsn;
    report.sync_state = sync_state;
    autofailover_ext::steady_report_from_arrays(&report, streaming, streaming_lsns);
    // A steady group's heartbeat: the answer the last decision gave, from shared memory.
    autofailover_ext::SteadyAnswer cached;
    if (autofailover_ext::answer_steady_heartbeat(node_id, report, &cached)) {
        autofailover_ext::KeeperAnswer answer{};
        answer.has_self = true;
        answer.goal_state = cached.goal_state;
        answer.candidate_priority = cached.candidate_priority;
        answer.replication_quorum = cached.replication_quorum;
        answer.has_primary = cached.has_primary;
        answer.primary_node_id = cached.primary_node_id;
        answer.primary_host = cached.primary_host;
        answer.primary_port = cached.primary_port;
        answer.synchronous_standby_names = cached.synchronous_standby_names;
        answer.network_partition_timeout_ms = cached.network_partition_timeout_ms;
        PG_RETURN_DATUM(HeapTupleGetDatum(
            answer_tuple(result_desc, state_type, answer, false, true, cached.client_access_version)));
    }
    MemoryContext caller_context = CurrentMemoryContext;

    SPI_connect();
    const NodeRef node = authorize_and_find(formation, node_id);
    // Read while the request is served: a keeper counts this answer as monitor contact (which keeps its
    // primary writable) only when the monitor held a valid leader lease then (docs/monitor-ha.md, M4).
    const bool monitor_leads = autofailover_ext::leader_lease_allows_decisions();
    // Lock order: formation (shared), then group; a node never changes group, so it was read before.
    autofailover_ext::lock_group(formation, node.group_id);
    const StoredReport stored =
        store_report(node_id, reported_datum, state_type, running, timeline, lsn, sync_state, streaming, streaming_lsns);
    autofailover_ext::remember_heartbeat(node_id, node.group_id, report);
    const bool reported_changed = strcmp(stored.old_reported, reported) != 0;
    if (reported_changed) {
        const char* reason = psprintf("%s reports %s", stored.node_name, reported);
        autofailover_ext::record_state_event(formation, node.group_id, node_id, stored.node_name, reported,
                                             stored.goal, reason);
    }
    // Primaries only: standby heartbeats, the hot path, skip it.
    if (is_writable_state(reported) && is_writable_state(stored.goal)) end_adoption_guard(formation, node.group_id);

    autofailover_ext::KeeperAnswer answer{};
    const bool dropped = strcmp(reported, "dropped") == 0 && strcmp(stored.goal, "dropped") == 0;
    if (dropped) {
        forget_dropped_node(formation, node_id);
        answer.has_self = true;
        answer.goal_state = "dropped";
        answer.synchronous_standby_names = "";
        answer.network_partition_timeout_ms = autofailover_ext::decision_settings(0).network_partition_timeout_ms;
    } else {
        // Before the decision's snapshot: a write committed after it bumps these again.
        const autofailover_ext::SteadyGenerations generations =
            autofailover_ext::read_steady_generations(formation, node.group_id);
        // The decision loads the group read-only, with the active snapshot: take a new one, which
        // sees this report and every report committed while this call waited for the group lock.
        CommandCounterIncrement();
        PushActiveSnapshot(GetTransactionSnapshot());
        autofailover_ext::decide_for_keeper(formation, node.group_id, node_id, caller_context, &answer);
        PopActiveSnapshot();
        if (answer.steady && (node.as_keeper || node.as_operator) && monitor_leads && !reported_changed &&
            answer.goal_changes == 0)
            remember_answer(node_id, node.group_id, generations, report, answer, node.client_access_version,
                            node.as_operator);
    }
    if (!dropped && !reported_changed && answer.goal_changes == 0)
        // A pure heartbeat: only last_report and the LSN changed, and the keeper repeats them
        // within a period, so its commit need not wait for the WAL flush. Goal changes and events
        // always commit synchronously, so a keeper never acts on a goal a crash could lose.
        (void)set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
                                false);

    MemoryContext spi_context = MemoryContextSwitchTo(caller_context);
    HeapTuple tuple = answer_tuple(result_desc, state_type, answer, dropped, monitor_leads, node.client_access_version);
    MemoryContextSwitchTo(spi_context);
    SPI_finish();
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

}  // extern "C"
