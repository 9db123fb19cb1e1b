// SQL-callable internals of the extension (autofailover._*). The PL/pgSQL API
// in sql/ validates input and takes the decision locks, then calls these. Each
// is C-style: SPI load (group_store), one bridge call into the pure core (which
// never throws across the bridge), SPI store, ERROR only from plain frames.
#include "monitor_ext/core_bridge.h"
#include "monitor_ext/group_decision.h"
#include "monitor_ext/group_store.h"
#include "monitor_ext/leader_lease.h"
#include "monitor_ext/metrics.h"
#include "monitor_ext/library_version.h"
#include "monitor_ext/pg_include.h"

#include <type_traits>

namespace {

using autofailover_bridge::BridgeResult;
using autofailover_bridge::DecisionOutput;
using autofailover_bridge::GroupInput;
using autofailover_bridge::Outcome;

const char* text_arg(FunctionCallInfo fcinfo, int n, const char* what) {
    if (PG_ARGISNULL(n))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be NULL", what)));
    return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

void require_not_null(FunctionCallInfo fcinfo, int n, const char* what) {
    if (PG_ARGISNULL(n))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be NULL", what)));
}

Datum text_or_null(const char* value, bool* isnull) {
    *isnull = value == nullptr;
    return value == nullptr ? (Datum)0 : CStringGetTextDatum(value);
}

autofailover_bridge::OperatorCommand parse_command(const char* name) {
    using autofailover_bridge::OperatorCommand;
    if (strcmp(name, "switchover") == 0) return OperatorCommand::Switchover;
    if (strcmp(name, "promotion") == 0) return OperatorCommand::Promotion;
    if (strcmp(name, "failover") == 0) return OperatorCommand::Failover;
    if (strcmp(name, "start_maintenance") == 0) return OperatorCommand::StartMaintenance;
    if (strcmp(name, "stop_maintenance") == 0) return OperatorCommand::StopMaintenance;
    if (strcmp(name, "apply_settings") == 0) return OperatorCommand::ApplySettings;
    if (strcmp(name, "remove_node") == 0) return OperatorCommand::RemoveNode;
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown operator command \"%s\"", name)));
    return OperatorCommand::Switchover;  // not reached
}

// _operator and _operator_preview share their first five arguments: (command, formation, group_id,
// target_node, accept_data_loss). Trivially destructible, so the ereport of a bad argument skips nothing.
struct OperatorArgs {
    const char* formation;
    int group_id;
    autofailover_bridge::OperatorInput command;
};

OperatorArgs operator_args(FunctionCallInfo fcinfo) {
    OperatorArgs args{};
    const char* command_name = text_arg(fcinfo, 0, "command");
    args.formation = text_arg(fcinfo, 1, "formation");
    require_not_null(fcinfo, 2, "group_id");
    args.group_id = PG_GETARG_INT32(2);
    args.command.command = parse_command(command_name);
    args.command.target = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3);
    args.command.accept_data_loss = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
    args.command.what_changed = "";
    return args;
}

Datum validation_result(FunctionCallInfo fcinfo, autofailover_bridge::Validated what) {
    text* value = PG_GETARG_TEXT_PP(0);
    const int length = VARSIZE_ANY_EXHDR(value);
    const char* utf8 = pg_server_to_any(VARDATA_ANY(value), length, PG_UTF8);
    const std::size_t utf8_length = utf8 == VARDATA_ANY(value) ? static_cast<std::size_t>(length) : strlen(utf8);
    char problem[256];
    autofailover_bridge::validation_problem(what, utf8, utf8_length, problem, sizeof problem);
    PG_RETURN_TEXT_P(cstring_to_text(problem));
}

// The goal of a node just inserted, decided by the core on its group without it, stored, and returned as text
// in the caller's memory context. `run` calls the bridge (a second time when the core asked for more text).
// Only trivially destructible values live here, so an elog(ERROR) from SPI longjmps over nothing to destroy.
template <typename RunAssignment>
Datum assign_new_node(const char* formation, int group_id, std::int64_t node_id, RunAssignment run) {
    static_assert(std::is_trivially_destructible<RunAssignment>::value, "no destructor may be skipped by a longjmp");
    MemoryContext caller_context = CurrentMemoryContext;
    SPI_connect();
    GroupInput* group = static_cast<GroupInput*>(palloc0(sizeof(GroupInput)));
    autofailover_ext::load_group(formation, group_id, node_id, group);
    DecisionOutput* decision = autofailover_ext::new_decision_output(group->node_count + 1);
    BridgeResult assigned = run(*group, *decision);
    if (assigned.outcome == Outcome::NeedMoreText) {
        autofailover_ext::grow_text(&decision->text);
        assigned = run(*group, *decision);
    }
    autofailover_ext::raise_if_failed(assigned);
    autofailover_ext::store_decision(group, decision);
    const char* goal = decision->count > 0 ? decision->assignments[0].goal : "init";
    text* result = static_cast<text*>(MemoryContextAlloc(caller_context, VARHDRSZ + strlen(goal)));
    SET_VARSIZE(result, VARHDRSZ + strlen(goal));
    memcpy(VARDATA(result), goal, strlen(goal));
    SPI_finish();
    PG_RETURN_TEXT_P(result);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_decide);
PG_FUNCTION_INFO_V1(autofailover_record_event);
PG_FUNCTION_INFO_V1(autofailover_register_assign);
PG_FUNCTION_INFO_V1(autofailover_adopt_assign);
PG_FUNCTION_INFO_V1(autofailover_operator);
PG_FUNCTION_INFO_V1(autofailover_group_view);
PG_FUNCTION_INFO_V1(autofailover_node_health);
PG_FUNCTION_INFO_V1(autofailover_core_node_states);
PG_FUNCTION_INFO_V1(autofailover_host_problem);
PG_FUNCTION_INFO_V1(autofailover_node_name_problem);
PG_FUNCTION_INFO_V1(autofailover_operator_preview);
PG_FUNCTION_INFO_V1(autofailover_client_network_problem);
PG_FUNCTION_INFO_V1(autofailover_client_database_problem);
PG_FUNCTION_INFO_V1(autofailover_client_role_problem);

// _decide(formation, group_id, node_id): run the decision for the group, store
// it, and return what the keeper of node_id (may be NULL) needs to know.
PGDLLEXPORT Datum autofailover_decide(PG_FUNCTION_ARGS) {
    autofailover_ext::check_library_version();
    const char* formation = text_arg(fcinfo, 0, "formation");
    require_not_null(fcinfo, 1, "group_id");
    const int group_id = PG_GETARG_INT32(1);
    const std::int64_t node_id = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);

    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "autofailover._decide must return a composite type");
    result_desc = BlessTupleDesc(result_desc);
    MemoryContext caller_context = CurrentMemoryContext;

    SPI_connect();
    autofailover_ext::KeeperAnswer answer;
    autofailover_ext::decide_for_keeper(formation, group_id, node_id, caller_context, &answer);
    MemoryContext spi_context = MemoryContextSwitchTo(caller_context);
    Datum values[13];
    bool nulls[13] = {};
    values[0] = text_or_null(answer.has_self ? answer.goal_state : nullptr, &nulls[0]);
    values[1] = Int32GetDatum(answer.candidate_priority);
    nulls[1] = !answer.has_self;
    values[2] = BoolGetDatum(answer.replication_quorum);
    nulls[2] = !answer.has_self;
    autofailover_ext::fill_peer_columns(answer, values, nulls);
    values[10] = CStringGetTextDatum(answer.waiting_reason);
    values[11] = Int32GetDatum(answer.network_partition_timeout_ms);
    values[12] = Int32GetDatum(answer.goal_changes);
    HeapTuple tuple = heap_form_tuple(result_desc, values, nulls);
    MemoryContextSwitchTo(spi_context);
    SPI_finish();
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}


// _record_event(formation, group_id, node_id, node_name, reported_state, goal_state, description):
// the events row and the NOTIFY of a change the core did not decide, written by the same code as
// the core's own (group_store.cpp), so SQL and C callers give listeners one payload shape.
PGDLLEXPORT Datum autofailover_record_event(PG_FUNCTION_ARGS) {
    const char* formation = text_arg(fcinfo, 0, "formation");
    require_not_null(fcinfo, 1, "group_id");
    require_not_null(fcinfo, 2, "node_id");
    const char* node_name = text_arg(fcinfo, 3, "node_name");
    require_not_null(fcinfo, 4, "reported_state");
    require_not_null(fcinfo, 5, "goal_state");
    const char* description = text_arg(fcinfo, 6, "description");
    const char* reported = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(4)));
    const char* goal = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(5)));
    SPI_connect();
    autofailover_ext::record_state_event(formation, PG_GETARG_INT32(1), PG_GETARG_INT64(2), node_name, reported, goal,
                                         description);
    SPI_finish();
    PG_RETURN_VOID();
}

// _register_assign(formation, group_id, node_id, candidate_priority): the
// initial goal of a node just inserted, decided on the group without it.
PGDLLEXPORT Datum autofailover_register_assign(PG_FUNCTION_ARGS) {
    autofailover_ext::check_library_version();
    const char* formation = text_arg(fcinfo, 0, "formation");
    require_not_null(fcinfo, 1, "group_id");
    require_not_null(fcinfo, 2, "node_id");
    require_not_null(fcinfo, 3, "candidate_priority");
    const int group_id = PG_GETARG_INT32(1);
    const std::int64_t node_id = PG_GETARG_INT64(2);
    const int candidate_priority = PG_GETARG_INT32(3);
    autofailover_ext::require_leader_lease("registering a node");
    return assign_new_node(formation, group_id, node_id, [&](const GroupInput& group, DecisionOutput& decision) {
        return autofailover_bridge::run_initial_assignment(group, node_id, candidate_priority, decision);
    });
}

// _adopt_assign(formation, group_id, node_id, reported_state, timeline): the goal of
// a node just inserted by adopt_node (docs/monitor-ha.md, M6), decided by the core
// on the group without it; a refused claim is an ERROR 55000 with the core's reason.
PGDLLEXPORT Datum autofailover_adopt_assign(PG_FUNCTION_ARGS) {
    autofailover_ext::check_library_version();
    const char* formation = text_arg(fcinfo, 0, "formation");
    require_not_null(fcinfo, 1, "group_id");
    require_not_null(fcinfo, 2, "node_id");
    const char* reported = text_arg(fcinfo, 3, "reported_state");
    require_not_null(fcinfo, 4, "timeline");
    const int group_id = PG_GETARG_INT32(1);
    const std::int64_t node_id = PG_GETARG_INT64(2);
    const int timeline = PG_GETARG_INT32(4);
    autofailover_ext::require_leader_lease("adopting a node");
    return assign_new_node(formation, group_id, node_id, [&](const GroupInput& group, DecisionOutput& decision) {
        return autofailover_bridge::run_adoption_assignment(group, node_id, reported, timeline, decision);
    });
}

// _operator(command, formation, group_id, target_node, accept_data_loss,
// what_changed): plan an operator command in the core and store it.
PGDLLEXPORT Datum autofailover_operator(PG_FUNCTION_ARGS) {
    autofailover_ext::check_library_version();
    OperatorArgs args = operator_args(fcinfo);
    autofailover_bridge::OperatorInput& command = args.command;
    if (!PG_ARGISNULL(5)) command.what_changed = text_to_cstring(PG_GETARG_TEXT_PP(5));
    autofailover_ext::require_leader_lease("the operator command");
    MemoryContext caller_context = CurrentMemoryContext;

    SPI_connect();
    GroupInput* group = static_cast<GroupInput*>(palloc0(sizeof(GroupInput)));
    autofailover_ext::load_group(args.formation, args.group_id, 0, group);
    DecisionOutput* decision = autofailover_ext::new_decision_output(group->node_count);
    BridgeResult planned = autofailover_bridge::run_operator(*group, command, *decision);
    if (planned.outcome == Outcome::NeedMoreText) {
        autofailover_ext::grow_text(&decision->text);
        planned = autofailover_bridge::run_operator(*group, command, *decision);
    }
    autofailover_ext::raise_if_failed(planned);
    autofailover_ext::store_decision(group, decision);
    char* waiting = MemoryContextStrdup(caller_context, decision->waiting_reason);
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text(waiting));
}

// _group_view(formation, group_id) → (primary_node_id, synchronous_standby_names):
// read-only view of the group through the core, no decision taken.
PGDLLEXPORT Datum autofailover_group_view(PG_FUNCTION_ARGS) {
    const char* formation = text_arg(fcinfo, 0, "formation");
    require_not_null(fcinfo, 1, "group_id");
    const int group_id = PG_GETARG_INT32(1);
    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "autofailover._group_view must return a composite type");
    result_desc = BlessTupleDesc(result_desc);
    MemoryContext caller_context = CurrentMemoryContext;

    SPI_connect();
    GroupInput* group = static_cast<GroupInput*>(palloc0(sizeof(GroupInput)));
    autofailover_ext::load_group(formation, group_id, 0, group);
    autofailover_bridge::KeeperView* view = autofailover_ext::new_keeper_view();
    BridgeResult viewed = autofailover_bridge::keeper_view(*group, 0, *view);
    if (viewed.outcome == Outcome::NeedMoreText) {
        autofailover_ext::grow_text(&view->text);
        viewed = autofailover_bridge::keeper_view(*group, 0, *view);
    }
    autofailover_ext::raise_if_failed(viewed);
    MemoryContext spi_context = MemoryContextSwitchTo(caller_context);
    Datum values[2] = {Int64GetDatum(view->primary_node_id), CStringGetTextDatum(view->synchronous_standby_names)};
    bool nulls[2] = {!view->has_primary, false};
    HeapTuple tuple = heap_form_tuple(result_desc, values, nulls);
    MemoryContextSwitchTo(spi_context);
    SPI_finish();
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

// _node_health(formation, group_id) → (node_id, keeper_reporting, unhealthy), as the core judges them.
PGDLLEXPORT Datum autofailover_node_health(PG_FUNCTION_ARGS) {
    const char* formation = text_arg(fcinfo, 0, "formation");
    require_not_null(fcinfo, 1, "group_id");
    const int group_id = PG_GETARG_INT32(1);
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);

    SPI_connect();
    GroupInput* group = static_cast<GroupInput*>(palloc0(sizeof(GroupInput)));
    autofailover_ext::load_group(formation, group_id, 0, group);
    for (std::size_t i = 0; i < group->node_count; ++i) {
        autofailover_bridge::NodeHealthView health{};
        const BridgeResult judged = autofailover_bridge::node_health(*group, group->nodes[i].node_id, health);
        autofailover_ext::raise_if_failed(judged);
        Datum values[3] = {Int64GetDatum(group->nodes[i].node_id), BoolGetDatum(health.keeper_reporting),
                           BoolGetDatum(health.unhealthy)};
        bool nulls[3] = {};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    SPI_finish();
    return (Datum)0;
}

// core_node_states(): the core's state names in enum order, to compare with
// enum_range(NULL::autofailover.node_state) in a regression test.
PGDLLEXPORT Datum autofailover_core_node_states(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    const std::size_t count = autofailover_bridge::node_state_count();
    Datum* names = static_cast<Datum*>(palloc(sizeof(Datum) * count));
    for (std::size_t i = 0; i < count; ++i) {
        char name[autofailover_bridge::kStateLen];
        if (!autofailover_bridge::node_state_name(i, name))
            elog(ERROR, "autofailover: the core has no name for node state %zu", i);
        names[i] = CStringGetTextDatum(name);
    }
    PG_RETURN_ARRAYTYPE_P(construct_array(names, static_cast<int>(count), TEXTOID, -1, false, TYPALIGN_INT));
}

// _host_problem(host) / _node_name_problem(name) → why the value is refused, '' when accepted.
// STRICT: NULL in, NULL out. The text is checked as UTF-8 whatever the database encoding.
PGDLLEXPORT Datum autofailover_host_problem(PG_FUNCTION_ARGS) {
    return validation_result(fcinfo, autofailover_bridge::Validated::Host);
}

PGDLLEXPORT Datum autofailover_node_name_problem(PG_FUNCTION_ARGS) {
    return validation_result(fcinfo, autofailover_bridge::Validated::NodeName);
}

// _operator_preview(command, formation, group_id, target_node, accept_data_loss) →
// one row per node of the group: (node_id, planned_goal, reason, would_be_promoted,
// waiting_reason, would_wait_ms, would_wait_for). The operator command planned and its outcome simulated by the
// core (libautofailover/what_if.h) on the stored snapshot; nothing is written.
PGDLLEXPORT Datum autofailover_operator_preview(PG_FUNCTION_ARGS) {
    autofailover_ext::check_library_version();
    const OperatorArgs args = operator_args(fcinfo);
    const autofailover_bridge::OperatorInput& command = args.command;
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);

    SPI_connect();
    GroupInput* group = static_cast<GroupInput*>(palloc0(sizeof(GroupInput)));
    autofailover_ext::load_group(args.formation, args.group_id, 0, group);
    DecisionOutput* plan = autofailover_ext::new_decision_output(group->node_count);
    autofailover_bridge::PreviewOutput* preview =
        static_cast<autofailover_bridge::PreviewOutput*>(palloc0(sizeof(autofailover_bridge::PreviewOutput)));
    BridgeResult planned = autofailover_bridge::run_operator_preview(*group, command, *plan, *preview);
    if (planned.outcome == Outcome::NeedMoreText) {
        autofailover_ext::grow_text(&plan->text);
        planned = autofailover_bridge::run_operator_preview(*group, command, *plan, *preview);
    }
    autofailover_ext::raise_if_failed(planned);
    for (std::size_t i = 0; i < group->node_count; ++i) {
        const std::int64_t id = group->nodes[i].node_id;
        const char* goal = nullptr;
        const char* reason = nullptr;
        for (std::size_t a = 0; a < plan->count; ++a)
            if (plan->assignments[a].node_id == id) {
                goal = plan->assignments[a].goal;
                reason = plan->assignments[a].reason;
            }
        Datum values[7];
        bool nulls[7] = {};
        values[0] = Int64GetDatum(id);
        values[1] = text_or_null(goal, &nulls[1]);
        values[2] = text_or_null(reason, &nulls[2]);
        values[3] = BoolGetDatum(preview->has_promoted && preview->promoted_node_id == id);
        values[4] = CStringGetTextDatum(preview->waiting);
        values[5] = Int64GetDatum(preview->waited_ms);
        values[6] = CStringGetTextDatum(preview->first_wait);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    SPI_finish();
    return (Datum)0;
}

// Formation client access (set_formation_allow_clients): the keeper's own checks, so the monitor stores
// nothing a keeper would refuse.
PGDLLEXPORT Datum autofailover_client_network_problem(PG_FUNCTION_ARGS) {
    return validation_result(fcinfo, autofailover_bridge::Validated::ClientNetwork);
}

PGDLLEXPORT Datum autofailover_client_database_problem(PG_FUNCTION_ARGS) {
    return validation_result(fcinfo, autofailover_bridge::Validated::ClientDatabase);
}

PGDLLEXPORT Datum autofailover_client_role_problem(PG_FUNCTION_ARGS) {
    return validation_result(fcinfo, autofailover_bridge::Validated::ClientRole);
}

}  // extern "C"
