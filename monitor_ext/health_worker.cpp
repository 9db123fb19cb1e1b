// Health-check worker loop. Each round: (1) load the node list, (2) probe
// every node (probe.cpp), (3) store health + check time in one statement into
// autofailover.node_health (rows no keeper call touches, so the worker never
// waits on a keeper's group lock), (4) run autofailover._worker_decision() for each
// group whose health changed or that waits for something, one transaction per
// group so one failing group never blocks the others.
// A round waits for its probes at most health_check_timeout (and never past
// the next round): a node that does not answer keeps its probe running across
// rounds, and its result is stored, (3) and (4), as soon as it comes.
#include "monitor_ext/health_worker.h"

#include "monitor_ext/leader_lease.h"
#include "monitor_ext/metrics.h"
#include "monitor_ext/monitor_settings.h"
#include "monitor_ext/pg_include.h"
#include "monitor_ext/probe.h"

namespace autofailover_ext {
namespace {

// Seconds the postmaster waits before restarting a crashed worker.
constexpr int kWorkerRestartSeconds = 1;

// Per-round memory, reset at the start of each round. Outside a transaction
// CurrentMemoryContext would be TopMemoryContext, where every round would leak.
MemoryContext round_memory = nullptr;

struct GroupKey {
    const char* formation;
    int group_id;
};

// A round's nodes, alive until the next round starts: results of probes that
// finish between rounds are stored against them.
struct RoundState {
    ProbeTarget* targets;
    char** old_health;
    bool* stored;  // stored[i]: targets[i]'s result is in node_health
    std::size_t count;
};

void begin_round_transaction() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
}

void end_round_transaction() {
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    MemoryContextSwitchTo(round_memory);
}

bool extension_exists() {
    begin_round_transaction();
    const int rc = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'autofailover'", true, 1);
    const bool exists = rc == SPI_OK_SELECT && SPI_processed == 1;
    end_round_transaction();
    return exists;
}

// Loads every node into `round_context`; old_health[i] is its stored health.
std::size_t load_targets(MemoryContext round_context, ProbeTarget** targets, char*** old_health) {
    begin_round_transaction();
    if (SPI_execute("SELECT n.node_id, n.host, n.port, coalesce(h.health, 'unknown') FROM autofailover.nodes n "
                    // Longest unchecked first: with more nodes than probe slots, nobody waits for ever.
                    "LEFT JOIN autofailover.node_health h USING (node_id) "
                    "ORDER BY h.last_health_check NULLS FIRST, n.node_id",
                    true, 0) != SPI_OK_SELECT)
        elog(ERROR, "autofailover health check: loading nodes failed");
    const std::size_t count = SPI_processed;
    MemoryContext spi_context = MemoryContextSwitchTo(round_context);
    *targets = static_cast<ProbeTarget*>(palloc0(sizeof(ProbeTarget) * (count + 1)));
    *old_health = static_cast<char**>(palloc0(sizeof(char*) * (count + 1)));
    for (std::size_t i = 0; i < count; ++i) {
        HeapTuple tuple = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull = false;
        (*targets)[i].node_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
        (*targets)[i].host = SPI_getvalue(tuple, desc, 2);
        (*targets)[i].port = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
        (*old_health)[i] = SPI_getvalue(tuple, desc, 4);
    }
    MemoryContextSwitchTo(spi_context);
    end_round_transaction();
    return count;
}

// Stores the results marked in `fresh`, with each probe's duration (autofailover.metrics()).
void store_health(const ProbeTarget* all_targets, const bool* fresh, std::size_t all_count) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < all_count; ++i) count += fresh[i] ? 1 : 0;
    if (count == 0) return;
    begin_round_transaction();
    Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * count));
    Datum* health = static_cast<Datum*>(palloc(sizeof(Datum) * count));
    Datum* seconds = static_cast<Datum*>(palloc(sizeof(Datum) * count));
    std::uint64_t up = 0;
    count = 0;
    for (std::size_t i = 0; i < all_count; ++i) {
        if (!fresh[i]) continue;
        ids[count] = Int64GetDatum(all_targets[i].node_id);
        seconds[count] = Float8GetDatum(static_cast<double>(all_targets[i].duration_us) / 1e6);
        up += all_targets[i].result == ProbeResult::Up ? 1 : 0;
        health[count++] = CStringGetTextDatum(all_targets[i].result == ProbeResult::Up ? "good" : "bad");
    }
    Oid types[3] = {INT8ARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID};
    Datum args[3] = {
        PointerGetDatum(construct_array(ids, static_cast<int>(count), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
        PointerGetDatum(construct_array(health, static_cast<int>(count), TEXTOID, -1, false, TYPALIGN_INT)),
        PointerGetDatum(construct_array(seconds, static_cast<int>(count), FLOAT8OID, 8, FLOAT8PASSBYVAL,
                                        TYPALIGN_DOUBLE))};
    // Nodes removed since the load simply do not match (the join skips them).
    const int rc = SPI_execute_with_args(
        "INSERT INTO autofailover.node_health (node_id, health, last_health_check, probe_seconds) "
        "SELECT p.node_id, p.health, clock_timestamp(), p.seconds FROM unnest($1, $2, $3) AS p(node_id, health, seconds) "
        "JOIN autofailover.nodes n USING (node_id) "
        "ON CONFLICT (node_id) DO UPDATE SET health = excluded.health, last_health_check = excluded.last_health_check, "
        "probe_seconds = excluded.probe_seconds",
        3, types, args, nullptr, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "autofailover health check: storing health failed");
    end_round_transaction();
    count_probes(up, count - up);
}

// Groups to decide now: health changed this round, or a node waits for its
// goal, or a keeper is silent (its primary may need a failover, or be suspected:
// primary_suspect_timeout, docs/settings.md).
std::size_t groups_to_decide(MemoryContext round_context, const ProbeTarget* targets, char** old_health,
                             const bool* fresh, std::size_t count, GroupKey** groups) {
    std::size_t changed = 0;
    Datum* changed_ids = static_cast<Datum*>(palloc(sizeof(Datum) * (count + 1)));
    for (std::size_t i = 0; i < count; ++i) {
        if (!fresh[i]) continue;
        const char* now_health = targets[i].result == ProbeResult::Up ? "good" : "bad";
        if (strcmp(now_health, old_health[i]) != 0) changed_ids[changed++] = Int64GetDatum(targets[i].node_id);
    }
    begin_round_transaction();
    Oid types[1] = {INT8ARRAYOID};
    Datum args[1] = {PointerGetDatum(
        construct_array(changed_ids, static_cast<int>(changed), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
    const int rc = SPI_execute_with_args(
        "SELECT DISTINCT formation_id, group_id FROM autofailover.nodes "
        "WHERE node_id = ANY ($1) OR reported_state <> goal_state "
        "OR coalesce(autofailover._heartbeat_at(node_id), last_report) IS NULL "
        "OR coalesce(autofailover._heartbeat_at(node_id), last_report) < clock_timestamp() - "
        "LEAST(pg_catalog.current_setting('autofailover.node_considered_unhealthy_timeout')::interval, "
        "pg_catalog.current_setting('autofailover.primary_suspect_timeout')::interval) "
        "ORDER BY formation_id, group_id",
        1, types, args, nullptr, true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "autofailover health check: listing groups failed");
    const std::size_t group_count = SPI_processed;
    MemoryContext spi_context = MemoryContextSwitchTo(round_context);
    *groups = static_cast<GroupKey*>(palloc0(sizeof(GroupKey) * (group_count + 1)));
    for (std::size_t i = 0; i < group_count; ++i) {
        bool isnull = false;
        (*groups)[i].formation = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        (*groups)[i].group_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
    }
    MemoryContextSwitchTo(spi_context);
    end_round_transaction();
    return group_count;
}

void decide_group(MemoryContext round_context, const GroupKey* group) {
    PG_TRY();
    {
        begin_round_transaction();
        Oid types[2] = {TEXTOID, INT4OID};
        Datum args[2] = {CStringGetTextDatum(group->formation), Int32GetDatum(group->group_id)};
        SPI_execute_with_args("SELECT autofailover._worker_decision($1, $2)", 2, types, args, nullptr, false, 0);
        end_round_transaction();
    }
    PG_CATCH();
    {
        // One failing group must not stop the probes of all others: log, abort, go on.
        MemoryContextSwitchTo(round_context);
        ErrorData* error = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        MemoryContextSwitchTo(round_context);
        ereport(LOG, (errmsg("autofailover health check: formation=%s group=%d decision failed: %s",
                             group->formation, group->group_id, error->message)));
        FreeErrorData(error);
    }
    PG_END_TRY();
}

// Whether the previous round could decide (replicated monitors: the leader lease), to log changes once.
bool could_decide = true;

// Stores the results that came in since the last call and runs the decisions
// (always at the end of a round; between rounds only when there is a result).
void report_results(MemoryContext round_context, RoundState* round, bool end_of_round) {
    MemoryContext previous = MemoryContextSwitchTo(round_context);
    bool* fresh = static_cast<bool*>(palloc0(sizeof(bool) * (round->count + 1)));
    MemoryContextSwitchTo(previous);
    bool any = false;
    for (std::size_t i = 0; i < round->count; ++i) {
        fresh[i] = round->targets[i].result != ProbeResult::Pending && !round->stored[i];
        round->stored[i] = round->stored[i] || fresh[i];
        any = any || fresh[i];
    }
    if (!any && !end_of_round) return;
    store_health(round->targets, fresh, round->count);
    // Without the leader lease (docs/monitor-ha.md) health is still stored, but nothing is decided.
    const bool can_decide = leader_lease_allows_decisions();
    if (can_decide != could_decide)
        ereport(LOG, (errmsg(can_decide ? "autofailover health check: leader lease valid, decisions resume"
                                        : "autofailover health check: no valid leader lease, no decisions")));
    could_decide = can_decide;
    if (!can_decide) return;
    GroupKey* groups = nullptr;
    const std::size_t group_count =
        groups_to_decide(round_context, round->targets, round->old_health, fresh, round->count, &groups);
    for (std::size_t i = 0; i < group_count; ++i) decide_group(round_context, &groups[i]);
}

RoundState run_round(MemoryContext round_context, ProbeEngine* probes, const ProbeSettings& settings,
                     TimestampTz round_start) {
    RoundState round{};
    round.count = load_targets(round_context, &round.targets, &round.old_health);
    MemoryContext previous = MemoryContextSwitchTo(round_context);
    round.stored = static_cast<bool*>(palloc0(sizeof(bool) * (round.count + 1)));
    const int wait_ms = settings.timeout_ms < settings.period_ms ? settings.timeout_ms : settings.period_ms;
    probe_round(probes, round.targets, round.count, settings, TimestampTzPlusMilliseconds(round_start, wait_ms));
    MemoryContextSwitchTo(previous);
    report_results(round_context, &round, true);
    return round;
}

void reload_config_if_asked() {
    if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
    }
}

// Until the next round, probes still running (a node that does not answer)
// go on, each on its own deadline; a result that comes in is stored at once.
void pause_until(MemoryContext round_context, ProbeEngine* probes, RoundState* round, TimestampTz next_round) {
    for (;;) {
        const bool delivered = probe_idle(probes, probe_settings(), next_round);
        CHECK_FOR_INTERRUPTS();
        reload_config_if_asked();
        if (delivered) {
            pgstat_report_activity(STATE_RUNNING, "storing late probe results");
            report_results(round_context, round, false);
            pgstat_report_activity(STATE_IDLE, nullptr);
        }
        if (GetCurrentTimestamp() >= next_round) return;
    }
}

void wait_for(long milliseconds) {
    const int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, milliseconds, PG_WAIT_EXTENSION);
    if (rc & WL_LATCH_SET) ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    reload_config_if_asked();
}

}  // namespace

void register_health_worker() {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = kWorkerRestartSeconds;
    strlcpy(worker.bgw_library_name, "autofailover", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "autofailover_health_worker_main", BGW_MAXLEN);
    strlcpy(worker.bgw_name, "autofailover health check", BGW_MAXLEN);
    strlcpy(worker.bgw_type, "autofailover health check", BGW_MAXLEN);
    RegisterBackgroundWorker(&worker);
}

}  // namespace autofailover_ext

extern "C" {

PGDLLEXPORT void autofailover_health_worker_main(Datum argument);

void autofailover_health_worker_main(Datum argument) {
    (void)argument;
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(autofailover_ext::monitor_database(), nullptr, 0);
    pgstat_report_appname("autofailover health check");
    ereport(LOG, (errmsg("autofailover health check: started in database \"%s\"",
                         autofailover_ext::monitor_database())));

    MemoryContext round_context =
        AllocSetContextCreate(TopMemoryContext, "autofailover health check round", ALLOCSET_DEFAULT_SIZES);
    autofailover_ext::round_memory = round_context;
    autofailover_ext::ProbeEngine* probes = autofailover_ext::create_probe_engine();
    bool announced_wait = false;
    for (;;) {
        const autofailover_ext::ProbeSettings settings = autofailover_ext::probe_settings();
        const TimestampTz round_start = GetCurrentTimestamp();
        MemoryContextSwitchTo(round_context);
        MemoryContextReset(round_context);
        if (!autofailover_ext::extension_exists()) {
            autofailover_ext::probe_abandon_all(probes);
            if (!announced_wait)
                ereport(LOG, (errmsg("autofailover health check: waiting for CREATE EXTENSION autofailover")));
            announced_wait = true;
            autofailover_ext::wait_for(settings.period_ms);
            continue;
        }
        announced_wait = false;
        pgstat_report_activity(STATE_RUNNING, "probing nodes");
        autofailover_ext::RoundState round = autofailover_ext::run_round(round_context, probes, settings, round_start);
        pgstat_report_activity(STATE_IDLE, nullptr);
        autofailover_ext::pause_until(round_context, probes, &round,
                                      TimestampTzPlusMilliseconds(round_start, settings.period_ms));
    }
}

}  // extern "C"
