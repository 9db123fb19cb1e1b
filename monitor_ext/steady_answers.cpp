// Shared memory behind monitor_ext/steady_answers.h: one hash table of nodes
// (their latest heartbeat and, in steady groups, their cached answer) under one
// LWLock, a spinlock per entry, and the generation counters.
#include "monitor_ext/steady_answers.h"

#include "monitor_ext/decision_lock.h"
#include "monitor_ext/leader_lease.h"
#include "monitor_ext/monitor_settings.h"
#include "monitor_ext/pg_include.h"

extern "C" {
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
}

#include <cstring>

namespace autofailover_ext {
namespace {

// Groups hash into this many generation slots; two groups sharing one only
// invalidate each other's answers more often.
constexpr int kGroupSlots = 4096;
// Groups a transaction may change before its commit bumps every answer instead.
constexpr int kPendingSlots = 64;
constexpr const char* kTrancheName = "autofailover steady answers";

struct SteadyShared {
    pg_atomic_uint64 global_generation;
    pg_atomic_uint64 answers_from_cache;
    pg_atomic_uint64 group_generation[kGroupSlots];
    LWLock* lock;  // the hash table's structure; entries have their own spinlock
};

struct SteadyEntry {
    std::int64_t node_id;  // hash key
    slock_t mutex;
    // The latest heartbeat, from either path.
    TimestampTz heartbeat_at;
    XLogRecPtr lsn;
    int streaming_count;  // -1: not kept
    std::int64_t streaming_ids[kSteadyMaxStreaming];
    XLogRecPtr streaming_flush_lsns[kSteadyMaxStreaming];
    // The cached answer and everything it was valid for.
    bool has_answer;
    SteadyGenerations generations;
    char formation[NAMEDATALEN];
    int group_id;
    NameData keeper_role;  // the session role the answer was authorized for
    bool as_operator;
    TimestampTz session;
    std::int64_t leader_since_us;
    autofailover_bridge::SettingsRow settings;
    char reported_state[32];
    bool pg_is_running;
    int timeline;
    char sync_state[16];
    SteadyAnswer answer;
};

int answer_slots = 16384;  // autofailover.steady_answer_slots
SteadyShared* shared = nullptr;
HTAB* entries = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

// Backend-local: the node whose report node_active is storing, and the slots this
// transaction's writes bump again once they are committed.
std::int64_t storing_node = 0;
int pending_slots[kPendingSlots];
int pending_count = 0;
bool pending_global = false;

Size shared_size() {
    return add_size(MAXALIGN(sizeof(SteadyShared)),
                    hash_estimate_size(answer_slots > 0 ? answer_slots : 1, sizeof(SteadyEntry)));
}

void steady_shmem_request() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(shared_size());
    RequestNamedLWLockTranche(kTrancheName, 1);
}

void steady_shmem_startup() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<SteadyShared*>(ShmemInitStruct("autofailover steady answers", sizeof(SteadyShared), &found));
    if (!found) {
        pg_atomic_init_u64(&shared->global_generation, 1);
        pg_atomic_init_u64(&shared->answers_from_cache, 0);
        for (auto& generation : shared->group_generation) pg_atomic_init_u64(&generation, 1);
        shared->lock = &(GetNamedLWLockTranche(kTrancheName))->lock;
    }
    HASHCTL info{};
    info.keysize = sizeof(std::int64_t);
    info.entrysize = sizeof(SteadyEntry);
    const long size = answer_slots > 0 ? answer_slots : 1;
    entries = ShmemInitHash("autofailover steady answer entries", size, size, &info, HASH_ELEM | HASH_BLOBS);
    LWLockRelease(AddinShmemInitLock);
}

uint32 formation_hash(const char* formation) {
    return hash_bytes(reinterpret_cast<const unsigned char*>(formation), static_cast<int>(strlen(formation)));
}

// The slot from the formation's hash, so the fast path hashes the name outside the entry's spinlock.
int group_slot(uint32 formation_hashed, int group_id) {
    return static_cast<int>(hash_combine(formation_hashed, static_cast<uint32>(group_id)) % kGroupSlots);
}

int group_slot(const char* formation, int group_id) { return group_slot(formation_hash(formation), group_id); }

// A write that may change a decision input: answers cached before it are void now
// (the transaction may still roll back) and again once it committed (a decision
// whose snapshot predates the commit may have cached an answer meanwhile).
void bump_group(const char* formation, int group_id) {
    const int slot = group_slot(formation, group_id);
    pg_atomic_fetch_add_u64(&shared->group_generation[slot], 1);
    for (int i = 0; i < pending_count; ++i)
        if (pending_slots[i] == slot) return;
    if (pending_count < kPendingSlots)
        pending_slots[pending_count++] = slot;
    else
        pending_global = true;
}

void bump_global() {
    pg_atomic_fetch_add_u64(&shared->global_generation, 1);
    pending_global = true;
}

void steady_xact_callback(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_PREPARE:
            // Its commit would come later, from any session, with no bump after it.
            if (pending_count > 0 || pending_global)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("autofailover: a transaction that changes the monitor's tables cannot be "
                                       "prepared for two-phase commit")));
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
            if (shared != nullptr) {
                for (int i = 0; i < pending_count; ++i) pg_atomic_fetch_add_u64(&shared->group_generation[pending_slots[i]], 1);
                if (pending_global) pg_atomic_fetch_add_u64(&shared->global_generation, 1);
            }
            [[fallthrough]];
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            pending_count = 0;
            pending_global = false;
            storing_node = 0;
            break;
        default:
            break;
    }
}

void forget_node(std::int64_t node_id) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    hash_search(entries, &node_id, HASH_REMOVE, nullptr);
    LWLockRelease(shared->lock);
}

bool same_streaming(const SteadyEntry* entry, const SteadyReport& report) {
    if (entry->streaming_count != report.streaming_count) return false;
    for (int i = 0; i < report.streaming_count; ++i)
        if (entry->streaming_ids[i] != report.streaming_ids[i]) return false;
    return true;
}

void store_heartbeat(SteadyEntry* entry, const SteadyReport& report, TimestampTz at) {
    entry->heartbeat_at = at;
    entry->lsn = report.lsn;
    entry->streaming_count = report.streaming_count;
    for (int i = 0; i < report.streaming_count; ++i) {
        entry->streaming_ids[i] = report.streaming_ids[i];
        entry->streaming_flush_lsns[i] = report.streaming_flush_lsns[i];
    }
}

bool fits(const char* text, std::size_t size) { return strlen(text) < size; }

// One attribute of a trigger tuple by name; *isnull when NULL or when the table has no such column.
Datum tuple_value(HeapTuple tuple, TupleDesc desc, const char* name, bool* isnull) {
    const int column = SPI_fnumber(desc, name);
    if (column <= 0) {
        *isnull = true;
        return (Datum)0;
    }
    return heap_getattr(tuple, column, desc, isnull);
}

void bump_tuple_group(HeapTuple tuple, TupleDesc desc) {
    bool formation_null = false;
    bool group_null = false;
    const Datum formation = tuple_value(tuple, desc, "formation_id", &formation_null);
    const Datum group = tuple_value(tuple, desc, "group_id", &group_null);
    if (formation_null || group_null) {
        bump_global();
        return;
    }
    bump_group(TextDatumGetCString(formation), DatumGetInt32(group));
}

bool is_heartbeat_column(const char* name) {
    return strcmp(name, "last_report") == 0 || strcmp(name, "lsn") == 0 || strcmp(name, "streaming_flush_lsns") == 0 ||
           strcmp(name, "report_session") == 0;
}

// A change of nodes: any column but the heartbeat's changes decisions; heartbeat
// columns written by anything but node_active's own store (a test, an operator)
// void the node's heartbeat kept here, so the table's value counts again.
void node_row_changed(TriggerData* trigger) {
    TupleDesc desc = RelationGetDescr(trigger->tg_relation);
    HeapTuple old_row = trigger->tg_trigtuple;
    bool isnull = false;
    const std::int64_t node_id = DatumGetInt64(tuple_value(old_row, desc, "node_id", &isnull));
    if (!TRIGGER_FIRED_BY_UPDATE(trigger->tg_event)) {
        forget_node(node_id);
        bump_tuple_group(old_row, desc);
        return;
    }
    HeapTuple new_row = trigger->tg_newtuple;
    bool decision_changed = false;
    bool heartbeat_changed = false;
    for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute attribute = TupleDescAttr(desc, i);
        if (attribute->attisdropped) continue;
        bool old_null = false;
        bool new_null = false;
        const Datum old_value = heap_getattr(old_row, i + 1, desc, &old_null);
        const Datum new_value = heap_getattr(new_row, i + 1, desc, &new_null);
        const bool same = old_null == new_null &&
                          (old_null || datumIsEqual(old_value, new_value, attribute->attbyval, attribute->attlen));
        if (same) continue;
        if (is_heartbeat_column(NameStr(attribute->attname)))
            heartbeat_changed = true;
        else
            decision_changed = true;
    }
    if (heartbeat_changed && storing_node != node_id) forget_node(node_id);
    if (decision_changed) {
        bump_tuple_group(old_row, desc);
        bump_tuple_group(new_row, desc);
    }
}

// A node's probes changed its health: the answers of its group are void. Its group is
// known from its kept heartbeat; a node with none (never reported since Postgres started)
// voids every answer.
void node_health_changed(TriggerData* trigger) {
    bool isnull = false;
    std::int64_t node_id =
        DatumGetInt64(tuple_value(trigger->tg_trigtuple, RelationGetDescr(trigger->tg_relation), "node_id", &isnull));
    char formation[NAMEDATALEN] = "";
    int group_id = 0;
    LWLockAcquire(shared->lock, LW_SHARED);
    SteadyEntry* entry = isnull ? nullptr : static_cast<SteadyEntry*>(hash_search(entries, &node_id, HASH_FIND, nullptr));
    if (entry != nullptr) {
        SpinLockAcquire(&entry->mutex);
        strlcpy(formation, entry->formation, sizeof(formation));
        group_id = entry->group_id;
        SpinLockRelease(&entry->mutex);
    }
    LWLockRelease(shared->lock);
    if (formation[0] == '\0')
        bump_global();
    else
        bump_group(formation, group_id);
}

}  // namespace

void define_steady_answers() {
    DefineCustomIntVariable("autofailover.steady_answer_slots",
                            "Nodes whose heartbeats the monitor can answer from shared memory while their group is "
                            "steady (0: every heartbeat takes the full path).",
                            nullptr, &answer_slots, 16384, 0, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = steady_shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = steady_shmem_startup;
    RegisterXactCallback(steady_xact_callback, nullptr);
}

void steady_report_from_arrays(SteadyReport* report, ArrayType* streaming, ArrayType* streaming_lsns) {
    const int count = ArrayGetNItems(ARR_NDIM(streaming), ARR_DIMS(streaming));
    if (count > kSteadyMaxStreaming) {
        report->streaming_count = -1;
        return;
    }
    report->streaming_count = count;
    if (count == 0) return;
    const std::int64_t* ids = reinterpret_cast<const std::int64_t*>(ARR_DATA_PTR(streaming));
    const XLogRecPtr* lsns = reinterpret_cast<const XLogRecPtr*>(ARR_DATA_PTR(streaming_lsns));
    for (int i = 0; i < count; ++i) {
        report->streaming_ids[i] = ids[i];
        report->streaming_flush_lsns[i] = lsns[i];
    }
}

bool answer_steady_heartbeat(std::int64_t node_id, const SteadyReport& report, SteadyAnswer* answer) {
    if (entries == nullptr || answer_slots == 0 || report.streaming_count < 0) return false;
    if (!leader_lease_allows_decisions()) return false;
    const char* role = GetUserNameFromId(GetSessionUserId(), false);
    const bool operator_now = is_operator_session();
    const autofailover_bridge::SettingsRow settings = decision_settings(0);
    const std::int64_t leader_since = leader_since_unix_us();
    const TimestampTz now = GetCurrentTimestamp();
    const uint32 formation_hashed = formation_hash(report.formation);

    bool hit = false;
    LWLockAcquire(shared->lock, LW_SHARED);
    SteadyEntry* entry = static_cast<SteadyEntry*>(hash_search(entries, &node_id, HASH_FIND, nullptr));
    if (entry != nullptr) {
        SpinLockAcquire(&entry->mutex);
        const int slot = group_slot(formation_hashed, entry->group_id);
        hit = entry->has_answer && entry->session == MyStartTimestamp &&
              entry->generations.global == pg_atomic_read_u64(&shared->global_generation) &&
              entry->generations.group == pg_atomic_read_u64(&shared->group_generation[slot]) &&
              strcmp(entry->formation, report.formation) == 0 && strcmp(NameStr(entry->keeper_role), role) == 0 &&
              (!entry->as_operator || operator_now) &&
              entry->leader_since_us == leader_since &&
              memcmp(&entry->settings, &settings, sizeof(settings)) == 0 &&
              strcmp(entry->reported_state, report.reported_state) == 0 &&
              entry->pg_is_running == report.pg_is_running && entry->timeline == report.timeline &&
              strcmp(entry->sync_state, report.sync_state) == 0 && same_streaming(entry, report);
        if (hit) {
            *answer = entry->answer;
            store_heartbeat(entry, report, now);
        }
        SpinLockRelease(&entry->mutex);
    }
    LWLockRelease(shared->lock);
    if (hit) pg_atomic_fetch_add_u64(&shared->answers_from_cache, 1);
    return hit;
}

void begin_storing_report(std::int64_t node_id) { storing_node = node_id; }
void end_storing_report() { storing_node = 0; }

void remember_heartbeat(std::int64_t node_id, int group_id, const SteadyReport& report) {
    if (entries == nullptr || answer_slots == 0 || !fits(report.formation, NAMEDATALEN)) return;
    const TimestampTz now = GetCurrentTimestamp();
    LWLockAcquire(shared->lock, LW_SHARED);
    SteadyEntry* entry = static_cast<SteadyEntry*>(hash_search(entries, &node_id, HASH_FIND, nullptr));
    if (entry == nullptr) {
        LWLockRelease(shared->lock);
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        bool found = false;
        entry = static_cast<SteadyEntry*>(hash_search(entries, &node_id, HASH_ENTER_NULL, &found));
        if (entry == nullptr) {  // full: this node keeps the full path, the table has its heartbeat
            LWLockRelease(shared->lock);
            return;
        }
        if (!found) {
            SpinLockInit(&entry->mutex);
            entry->has_answer = false;
        }
    }
    SpinLockAcquire(&entry->mutex);
    store_heartbeat(entry, report, now);
    strlcpy(entry->formation, report.formation, sizeof(entry->formation));
    entry->group_id = group_id;
    // Until the decision caches it again: this report may differ from the cached one.
    entry->has_answer = false;
    SpinLockRelease(&entry->mutex);
    LWLockRelease(shared->lock);
}

SteadyGenerations read_steady_generations(const char* formation, int group_id) {
    if (shared == nullptr) return SteadyGenerations{0, 0};
    SteadyGenerations generations;
    generations.global = pg_atomic_read_u64(&shared->global_generation);
    generations.group = pg_atomic_read_u64(&shared->group_generation[group_slot(formation, group_id)]);
    return generations;
}

void remember_steady_answer(std::int64_t node_id, int group_id, const SteadyGenerations& generations,
                            const SteadyReport& report, const SteadyAnswer& answer, bool as_operator) {
    if (entries == nullptr || answer_slots == 0 || report.streaming_count < 0) return;
    if (!fits(report.formation, NAMEDATALEN) || !fits(report.reported_state, sizeof(SteadyEntry::reported_state)) ||
        !fits(report.sync_state, sizeof(SteadyEntry::sync_state)))
        return;
    const char* role = GetUserNameFromId(GetSessionUserId(), false);
    if (!fits(role, NAMEDATALEN)) return;
    const autofailover_bridge::SettingsRow settings = decision_settings(0);
    const std::int64_t leader_since = leader_since_unix_us();
    LWLockAcquire(shared->lock, LW_SHARED);
    SteadyEntry* entry = static_cast<SteadyEntry*>(hash_search(entries, &node_id, HASH_FIND, nullptr));
    if (entry != nullptr) {
        SpinLockAcquire(&entry->mutex);
        entry->has_answer = true;
        entry->generations = generations;
        strlcpy(entry->formation, report.formation, sizeof(entry->formation));
        entry->group_id = group_id;
        namestrcpy(&entry->keeper_role, role);
        entry->as_operator = as_operator;
        entry->session = MyStartTimestamp;
        entry->leader_since_us = leader_since;
        entry->settings = settings;
        strlcpy(entry->reported_state, report.reported_state, sizeof(entry->reported_state));
        entry->pg_is_running = report.pg_is_running;
        entry->timeline = report.timeline;
        strlcpy(entry->sync_state, report.sync_state, sizeof(entry->sync_state));
        entry->answer = answer;
        SpinLockRelease(&entry->mutex);
    }
    LWLockRelease(shared->lock);
}

bool latest_heartbeat(std::int64_t node_id, TimestampTz stored_last_report, bool has_stored, TimestampTz* at,
                      XLogRecPtr* lsn, const std::int64_t* ids, std::size_t count, std::uint64_t* flush_lsns) {
    if (entries == nullptr || answer_slots == 0) return false;
    bool newer = false;
    LWLockAcquire(shared->lock, LW_SHARED);
    SteadyEntry* entry = static_cast<SteadyEntry*>(hash_search(entries, &node_id, HASH_FIND, nullptr));
    if (entry != nullptr) {
        SpinLockAcquire(&entry->mutex);
        newer = !has_stored || entry->heartbeat_at > stored_last_report;
        if (newer) {
            *at = entry->heartbeat_at;
            *lsn = entry->lsn;
            bool same_ids = entry->streaming_count == static_cast<int>(count);
            for (std::size_t i = 0; same_ids && i < count; ++i) same_ids = entry->streaming_ids[i] == ids[i];
            for (std::size_t i = 0; same_ids && i < count; ++i) flush_lsns[i] = entry->streaming_flush_lsns[i];
        }
        SpinLockRelease(&entry->mutex);
    }
    LWLockRelease(shared->lock);
    return newer;
}

}  // namespace autofailover_ext

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_steady_answers_invalidate);
PG_FUNCTION_INFO_V1(autofailover_heartbeat_at);
PG_FUNCTION_INFO_V1(autofailover_heartbeat_lsn);
PG_FUNCTION_INFO_V1(autofailover_steady_answer_counts);

// AFTER ROW trigger on the tables decisions read (sql/autofailover--1.0.sql).
PGDLLEXPORT Datum autofailover_steady_answers_invalidate(PG_FUNCTION_ARGS) {
    using namespace autofailover_ext;
    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(((TriggerData*)fcinfo->context)->tg_event))
        elog(ERROR, "autofailover._steady_answers_invalidate must run as a row trigger");
    TriggerData* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (shared == nullptr) return PointerGetDatum(nullptr);
    const char* table = RelationGetRelationName(trigger->tg_relation);
    if (strcmp(table, "nodes") == 0) {
        node_row_changed(trigger);
    } else if (strcmp(table, "groups") == 0) {
        TupleDesc desc = RelationGetDescr(trigger->tg_relation);
        bump_tuple_group(trigger->tg_trigtuple, desc);
        if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event)) bump_tuple_group(trigger->tg_newtuple, desc);
    } else if (strcmp(table, "node_health") == 0) {
        node_health_changed(trigger);
    } else {
        bump_global();
    }
    return PointerGetDatum(nullptr);
}

// _heartbeat_at(node_id) / _heartbeat_lsn(node_id): the latest heartbeat kept in
// shared memory, NULL when none (the table's last_report and lsn then count).
PGDLLEXPORT Datum autofailover_heartbeat_at(PG_FUNCTION_ARGS) {
    TimestampTz at = 0;
    XLogRecPtr lsn = 0;
    if (!autofailover_ext::latest_heartbeat(PG_GETARG_INT64(0), 0, false, &at, &lsn, nullptr, 0, nullptr))
        PG_RETURN_NULL();
    PG_RETURN_TIMESTAMPTZ(at);
}

PGDLLEXPORT Datum autofailover_heartbeat_lsn(PG_FUNCTION_ARGS) {
    TimestampTz at = 0;
    XLogRecPtr lsn = 0;
    if (!autofailover_ext::latest_heartbeat(PG_GETARG_INT64(0), 0, false, &at, &lsn, nullptr, 0, nullptr))
        PG_RETURN_NULL();
    PG_RETURN_LSN(lsn);
}

// steady_answer_counts() → (nodes_with_answer, answers_from_cache): how many nodes have a cached
// answer now, and how many heartbeats were answered from the cache since Postgres started.
PGDLLEXPORT Datum autofailover_steady_answer_counts(PG_FUNCTION_ARGS) {
    using namespace autofailover_ext;
    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "autofailover.steady_answer_counts must return a composite type");
    result_desc = BlessTupleDesc(result_desc);
    int64 with_answer = 0;
    int64 answered = 0;
    if (entries != nullptr) {
        LWLockAcquire(shared->lock, LW_SHARED);
        HASH_SEQ_STATUS scan;
        hash_seq_init(&scan, entries);
        while (SteadyEntry* entry = static_cast<SteadyEntry*>(hash_seq_search(&scan))) {
            SpinLockAcquire(&entry->mutex);
            with_answer += entry->has_answer ? 1 : 0;
            SpinLockRelease(&entry->mutex);
        }
        LWLockRelease(shared->lock);
        answered = static_cast<int64>(pg_atomic_read_u64(&shared->answers_from_cache));
    }
    Datum values[2] = {Int64GetDatum(with_answer), Int64GetDatum(answered)};
    bool nulls[2] = {};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, values, nulls)));
}

}  // extern "C"
