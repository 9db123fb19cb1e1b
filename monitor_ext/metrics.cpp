// Shared-memory counters behind autofailover._monitor_counters() (monitor_ext/metrics.h).
// Plain C style with atomics: no lock, no C++ object with a destructor, no elog(ERROR)
// on the counting path, so decisions never fail or wait because of metrics.
#include "monitor_ext/metrics.h"

#include "monitor_ext/pg_include.h"

extern "C" {
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace autofailover_ext {
namespace {

struct MetricsShared {
    pg_atomic_uint64 decisions;
    pg_atomic_uint64 decision_us_sum;
    pg_atomic_uint64 last_decision_us;
    pg_atomic_uint64 probes_up;
    pg_atomic_uint64 probes_down;
};

MetricsShared* shared = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void metrics_shmem_request() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(MetricsShared)));
}

void metrics_shmem_startup() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<MetricsShared*>(ShmemInitStruct("autofailover monitor metrics", sizeof(MetricsShared), &found));
    if (!found) {
        pg_atomic_init_u64(&shared->decisions, 0);
        pg_atomic_init_u64(&shared->decision_us_sum, 0);
        pg_atomic_init_u64(&shared->last_decision_us, 0);
        pg_atomic_init_u64(&shared->probes_up, 0);
        pg_atomic_init_u64(&shared->probes_down, 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void define_metrics() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = metrics_shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = metrics_shmem_startup;
}

void count_decision(std::int64_t elapsed_us) {
    if (shared == nullptr) return;
    const uint64 us = elapsed_us > 0 ? static_cast<uint64>(elapsed_us) : 0;
    pg_atomic_fetch_add_u64(&shared->decisions, 1);
    pg_atomic_fetch_add_u64(&shared->decision_us_sum, us);
    pg_atomic_write_u64(&shared->last_decision_us, us);
}

void count_probes(std::uint64_t up, std::uint64_t down) {
    if (shared == nullptr) return;
    pg_atomic_fetch_add_u64(&shared->probes_up, up);
    pg_atomic_fetch_add_u64(&shared->probes_down, down);
}

}  // namespace autofailover_ext

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_monitor_counters);

// _monitor_counters() → (decisions, decision_seconds, last_decision_seconds, probes_up, probes_down)
PGDLLEXPORT Datum autofailover_monitor_counters(PG_FUNCTION_ARGS) {
    using autofailover_ext::shared;
    TupleDesc result_desc;
    if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "autofailover._monitor_counters must return a composite type");
    result_desc = BlessTupleDesc(result_desc);
    if (shared == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("autofailover is not loaded through shared_preload_libraries")));
    Datum values[5] = {
        Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&shared->decisions))),
        Float8GetDatum(static_cast<double>(pg_atomic_read_u64(&shared->decision_us_sum)) / 1e6),
        Float8GetDatum(static_cast<double>(pg_atomic_read_u64(&shared->last_decision_us)) / 1e6),
        Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&shared->probes_up))),
        Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&shared->probes_down)))};
    bool nulls[5] = {};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, values, nulls)));
}

}  // extern "C"
