// The monitor's leader lease, enforced inside Postgres (docs/monitor-ha.md).
//
// With replicated monitors, the agent (autoctl run-monitor) of the monitor that
// holds etcd's leader key renews this lease after every successful etcd
// keepalive: deadline = when that keepalive was sent + its TTL - a margin, on
// CLOCK_BOOTTIME. etcd can only hand the key to another monitor after its own
// lease expired, which is after that deadline; from the deadline on, this
// monitor takes no decision and commits none, even when its agent is frozen or
// dead. The deadline lives in shared memory: a restarted Postgres has no lease.
//
// Everything here is plain C style (no C++ object with a destructor), like
// node_ext/write_lease.cpp, so an elog(ERROR) longjmp skips nothing.
#include "monitor_ext/leader_lease.h"

#include "monitor_ext/group_store.h"
#include "monitor_ext/pg_include.h"

extern "C" {
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
}

#include <time.h>

namespace autofailover_ext {
namespace {

struct LeaderLeaseShared {
    slock_t mutex;
    int64 deadline_ns;          // on leader_lease_clock(); 0: never granted since Postgres started
    TimestampTz leader_since;   // when the current leadership began; 0: none
};

struct LeaseView {
    int64 deadline_ns;
    TimestampTz leader_since;
};

bool require_lease = false;           // autofailover.require_leader_lease
LeaderLeaseShared* shared = nullptr;
bool wrote_decision = false;          // this transaction stored a decision (checked at pre-commit)

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

// CLOCK_BOOTTIME keeps counting while processes are stopped and while the
// machine sleeps; the agent reads the same clock on the same host.
int64 lease_clock_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<int64>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

LeaseView read_lease() {
    LeaseView v{0, 0};
    if (shared == nullptr) return v;
    SpinLockAcquire(&shared->mutex);
    v.deadline_ns = shared->deadline_ns;
    v.leader_since = shared->leader_since;
    SpinLockRelease(&shared->mutex);
    return v;
}

bool lease_valid(const LeaseView& v) { return v.deadline_ns != 0 && lease_clock_ns() < v.deadline_ns; }

void leader_lease_shmem_request() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(LeaderLeaseShared)));
}

void leader_lease_shmem_startup() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<LeaderLeaseShared*>(
        ShmemInitStruct("autofailover monitor leader lease", sizeof(LeaderLeaseShared), &found));
    if (!found) {
        SpinLockInit(&shared->mutex);
        shared->deadline_ns = 0;
        shared->leader_since = 0;
    }
    LWLockRelease(AddinShmemInitLock);
}

// The last check: a transaction that stored a decision while the lease was
// valid does not commit after it ran out (the decision may be minutes old by
// then if the backend was stopped).
void leader_lease_xact_callback(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PARALLEL_PRE_COMMIT:
        case XACT_EVENT_PRE_PREPARE:
            if (wrote_decision && require_lease && !lease_valid(read_lease())) {
                wrote_decision = false;
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("autofailover: the leader lease of this monitor ran out before the "
                                       "decision committed; the commit is refused"),
                                errhint("Another monitor may lead now: reconnect with "
                                        "target_session_attrs=read-write.")));
            }
            break;
        default:
            wrote_decision = false;
            break;
    }
}

void require_superuser(const char* function) {
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("only a superuser may call autofailover.%s", function),
                        errhint("The monitor agent (autoctl run-monitor) renews the lease.")));
}

void require_shared() {
    if (shared == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("autofailover is not loaded through shared_preload_libraries")));
}

}  // namespace

void define_leader_lease() {
    DefineCustomBoolVariable(
        "autofailover.require_leader_lease",
        "Take decisions only while the leader lease renewed by the monitor agent is valid (replicated monitors).",
        "Off: a single monitor decides as it always did.", &require_lease, false, PGC_SUSET, 0, nullptr, nullptr,
        nullptr);
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = leader_lease_shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = leader_lease_shmem_startup;
    RegisterXactCallback(leader_lease_xact_callback, nullptr);
}

bool leader_lease_allows_decisions() { return !require_lease || lease_valid(read_lease()); }

void require_leader_lease(const char* what) {
    if (!require_lease) return;
    const LeaseView v = read_lease();
    if (!lease_valid(v))
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("autofailover: this monitor does not hold the leader lease; %s refused", what),
                 errdetail(v.deadline_ns == 0 ? "No lease was granted since this monitor started."
                                              : "Its lease ran out %lld ms ago.",
                           static_cast<long long>((lease_clock_ns() - v.deadline_ns) / 1000000)),
                 errhint("Retry through the multi-host monitor URI (target_session_attrs=read-write) once a "
                         "monitor leads; autoctl show monitors tells which one.")));
    wrote_decision = true;
}

std::int64_t leader_since_unix_us() {
    if (!require_lease) return 0;
    const LeaseView v = read_lease();
    return v.leader_since == 0 ? 0 : to_unix_us(v.leader_since);
}

}  // namespace autofailover_ext

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_renew_leader_lease);
PG_FUNCTION_INFO_V1(autofailover_leader_lease_clock);
PG_FUNCTION_INFO_V1(autofailover_leader_lease);

// renew_leader_lease(valid_for_ms int, from_clock_ns bigint DEFAULT NULL) → bool:
// deadline = from_clock_ns (default now) + valid_for_ms; valid_for_ms <= 0
// fences at once. Returns whether the lease is valid after the call.
PGDLLEXPORT Datum autofailover_renew_leader_lease(PG_FUNCTION_ARGS) {
    using namespace autofailover_ext;
    require_superuser("renew_leader_lease");
    require_shared();
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("valid_for_ms must not be NULL")));
    const int32 valid_for_ms = PG_GETARG_INT32(0);
    const int64 now = lease_clock_ns();
    int64 base = now;
    if (!PG_ARGISNULL(1)) {
        base = PG_GETARG_INT64(1);
        // A base in the future would stretch the lease past what etcd granted.
        if (base <= 0 || base > now)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("from_clock_ns must be a past value of autofailover.leader_lease_clock()")));
    }
    const bool fence = valid_for_ms <= 0;
    const int64 deadline = fence ? now : base + static_cast<int64>(valid_for_ms) * 1000000;
    const bool valid_now = !fence && now < deadline;
    const TimestampTz started = GetCurrentTimestamp();
    SpinLockAcquire(&shared->mutex);
    const bool was_valid = shared->deadline_ns != 0 && now < shared->deadline_ns;
    shared->deadline_ns = deadline;
    if (fence)
        shared->leader_since = 0;
    else if (valid_now && !was_valid)
        shared->leader_since = started;  // a new leadership: the grace period counts from here
    SpinLockRelease(&shared->mutex);
    PG_RETURN_BOOL(valid_now);
}

PGDLLEXPORT Datum autofailover_leader_lease_clock(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    PG_RETURN_INT64(autofailover_ext::lease_clock_ns());
}

// leader_lease() → (required, granted, valid, expires_in_ms, leader_since)
PGDLLEXPORT Datum autofailover_leader_lease(PG_FUNCTION_ARGS) {
    using namespace autofailover_ext;
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("leader_lease() must return a record")));
    desc = BlessTupleDesc(desc);
    const LeaseView v = read_lease();
    Datum values[5];
    bool nulls[5] = {false, false, false, false, false};
    values[0] = BoolGetDatum(require_lease);
    values[1] = BoolGetDatum(v.deadline_ns != 0);
    values[2] = BoolGetDatum(lease_valid(v));
    if (v.deadline_ns == 0)
        nulls[3] = true;
    else
        values[3] = Int64GetDatum((v.deadline_ns - lease_clock_ns()) / 1000000);
    if (v.leader_since == 0)
        nulls[4] = true;
    else
        values[4] = TimestampTzGetDatum(v.leader_since);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

}  // extern "C"
