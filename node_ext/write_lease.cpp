// autofailover_node: the primary's write lease, enforced inside Postgres.
//
// The keeper renews the lease while the monitor or a streaming standby confirms
// that this node is still the primary; the deadline is the keeper's own fencing
// deadline (last confirmation + network_partition_timeout), which the monitor
// waits out before it promotes anyone. When the whole host was frozen (SIGSTOP,
// a stalled VM) past a failover, Postgres resumes before its keeper can fence
// it: without this guard it answers as a writable primary for that moment.
//
// Once the deadline has passed and the keeper that holds the lease still exists,
// client sessions (backends and walsenders with a database) become read-only
// (new ones and each new statement), write transactions are refused at commit,
// and prepared transactions can be neither committed nor rolled back. A killed keeper does not make its primary
// read-only: the monitor never fails over a primary whose Postgres answers its
// probes, so writes go on until a keeper comes back (docs/write-lease.md).
//
// No C++ object with a destructor is ever alive here: every function is a plain
// C-style one, so an elog(ERROR) longjmp skips nothing.

extern "C" {
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

PG_MODULE_MAGIC;

// From libpq/auth.h, which pulls in libpq-be.h and with it the GSSAPI headers
// (libkrb5-dev) only for the Port type this hook never looks into.
struct Port;
typedef void (*ClientAuthentication_hook_type)(Port*, int);
extern PGDLLIMPORT ClientAuthentication_hook_type ClientAuthentication_hook;

void _PG_init(void);
PGDLLEXPORT Datum autofailover_node_renew_lease(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum autofailover_node_lease_clock(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum autofailover_node_lease(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(autofailover_node_renew_lease);
PG_FUNCTION_INFO_V1(autofailover_node_lease_clock);
PG_FUNCTION_INFO_V1(autofailover_node_lease);
}

#undef snprintf
#undef fopen

namespace {

constexpr int64 kNeverExpires = PG_INT64_MAX;

struct LeaseShared {
    slock_t mutex;
    int64 deadline_ns;        // on lease_clock(); 0: no lease since Postgres started
    int keeper_pid;           // 0: none
    uint64 keeper_started;    // the keeper's start time (/proc stat), so a reused pid is no keeper
};

struct LeaseView {
    int64 deadline_ns;
    int keeper_pid;
    uint64 keeper_started;
};

LeaseShared* lease = nullptr;
bool told_read_only = false;  // this backend logged once that it became read-only

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
ExecutorStart_hook_type prev_executor_start_hook = nullptr;
ProcessUtility_hook_type prev_process_utility_hook = nullptr;
ClientAuthentication_hook_type prev_client_authentication_hook = nullptr;

// CLOCK_BOOTTIME keeps counting while processes are stopped and while the machine
// sleeps, and every process of the host reads the same value.
int64 lease_clock_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<int64>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Field 22 (starttime) of /proc/<pid>/stat; 0 when the process is gone or a zombie.
uint64 process_start_time(int pid) {
    if (pid <= 0) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = fopen(path, "r");
    if (f == nullptr) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    const char* p = strrchr(buf, ')');
    if (p == nullptr || p[1] != ' ') return 0;
    p += 2;
    if (*p == 'Z' || *p == 'X') return 0;
    for (int field = 3; field < 22; ++field) {
        p = strchr(p, ' ');
        if (p == nullptr) return 0;
        ++p;
    }
    return strtoull(p, nullptr, 10);
}

LeaseView read_lease() {
    LeaseView v{0, 0, 0};
    if (lease == nullptr) return v;
    SpinLockAcquire(&lease->mutex);
    v.deadline_ns = lease->deadline_ns;
    v.keeper_pid = lease->keeper_pid;
    v.keeper_started = lease->keeper_started;
    SpinLockRelease(&lease->mutex);
    return v;
}

bool keeper_alive(const LeaseView& v) {
    return v.keeper_pid > 0 && v.keeper_started != 0 && process_start_time(v.keeper_pid) == v.keeper_started;
}

bool lease_blocks_writes() {
    if (lease == nullptr || RecoveryInProgress()) return false;
    const LeaseView v = read_lease();
    if (v.deadline_ns == 0 || lease_clock_ns() < v.deadline_ns) return false;
    return keeper_alive(v);
}

// Only client sessions: autovacuum and other background processes keep working.
// A walsender with a database (replication=database) runs any SQL a backend runs;
// a physical walsender runs replication commands only.
bool guarded_process() {
    return (MyBackendType == B_BACKEND || (MyBackendType == B_WAL_SENDER && am_db_walsender)) &&
           !IsParallelWorker();
}

void make_transaction_read_only() {
    if (XactReadOnly || !guarded_process() || !lease_blocks_writes()) return;
    XactReadOnly = true;
    if (!told_read_only) {
        told_read_only = true;
        ereport(LOG, (errmsg("autofailover_node: write lease expired while its keeper still runs: "
                             "this session's transactions are read-only until the keeper renews it")));
    }
}

void lease_executor_start(QueryDesc* query_desc, int eflags) {
    make_transaction_read_only();
    if (prev_executor_start_hook)
        prev_executor_start_hook(query_desc, eflags);
    else
        standard_ExecutorStart(query_desc, eflags);
}

// COMMIT PREPARED commits a transaction that passed the commit check when it was
// prepared, from a transaction without an xid of its own, and PostgreSQL allows it
// in a read-only transaction: refused here after the deadline. ROLLBACK PREPARED
// too: the outcome of a prepared transaction is decided where the lease is held
// (a standby that is promoted has it, prepared, if it was replicated).
void refuse_finishing_prepared(const Node* statement) {
    if (statement == nullptr || !IsA(statement, TransactionStmt)) return;
    const TransactionStmt* stmt = reinterpret_cast<const TransactionStmt*>(statement);
    if (stmt->kind != TRANS_STMT_COMMIT_PREPARED && stmt->kind != TRANS_STMT_ROLLBACK_PREPARED) return;
    if (!guarded_process() || !lease_blocks_writes()) return;
    ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                    errmsg("autofailover_node: the write lease of this primary expired; %s is refused",
                           stmt->kind == TRANS_STMT_COMMIT_PREPARED ? "COMMIT PREPARED" : "ROLLBACK PREPARED"),
                    errdetail("Prepared transaction \"%s\" stays prepared until the keeper renews the lease.",
                              stmt->gid != nullptr ? stmt->gid : ""),
                    errhint("Another node may have been promoted; decide the transaction there.")));
}

void lease_process_utility(PlannedStmt* pstmt, const char* query_string, bool read_only_tree,
                           ProcessUtilityContext context, ParamListInfo params, QueryEnvironment* query_env,
                           DestReceiver* dest, QueryCompletion* qc) {
    refuse_finishing_prepared(pstmt->utilityStmt);
    make_transaction_read_only();
    if (prev_process_utility_hook)
        prev_process_utility_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
}

// Sessions opened while the lease is expired are read-only for their whole life, and
// say so at once (default_transaction_read_only is reported to the client): libpq's
// target_session_attrs=read-write moves on to the next host.
void lease_client_authentication(Port* port, int status) {
    if (prev_client_authentication_hook) prev_client_authentication_hook(port, status);
    if (status == STATUS_OK && lease_blocks_writes())
        SetConfigOption("default_transaction_read_only", "on", PGC_SUSET, PGC_S_OVERRIDE);
}

// The last line of defence: a transaction that wrote before the lease expired
// (its statements ran in time) does not commit after it.
void lease_xact_callback(XactEvent event, void*) {
    if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE) return;
    if (!guarded_process() || !TransactionIdIsValid(GetTopTransactionIdIfAny())) return;
    if (!lease_blocks_writes()) return;
    const LeaseView v = read_lease();
    ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                    errmsg("autofailover_node: the write lease of this primary expired; the commit is refused"),
                    errdetail("It expired %lld ms ago: neither the monitor nor a standby has confirmed this node "
                              "as the primary within network_partition_timeout, and its keeper (pid %d) has not "
                              "fenced it yet.",
                              static_cast<long long>((lease_clock_ns() - v.deadline_ns) / 1000000), v.keeper_pid),
                    errhint("Another node may have been promoted. Reconnect with target_session_attrs=read-write.")));
}

void lease_shmem_request() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(LeaseShared)));
}

void lease_shmem_startup() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    lease = static_cast<LeaseShared*>(ShmemInitStruct("autofailover_node write lease", sizeof(LeaseShared), &found));
    if (!found) {
        SpinLockInit(&lease->mutex);
        lease->deadline_ns = 0;
        lease->keeper_pid = 0;
        lease->keeper_started = 0;
    }
    LWLockRelease(AddinShmemInitLock);
}

void require_loaded() {
    if (lease == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("autofailover_node is not loaded"),
                        errhint("Add autofailover_node to shared_preload_libraries and restart Postgres.")));
}

}  // namespace

extern "C" void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("autofailover_node must be loaded through shared_preload_libraries"),
                        errhint("The keeper writes shared_preload_libraries = 'autofailover_node' into "
                                "autofailover.conf; restart Postgres.")));
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = lease_shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = lease_shmem_startup;
    prev_executor_start_hook = ExecutorStart_hook;
    ExecutorStart_hook = lease_executor_start;
    prev_process_utility_hook = ProcessUtility_hook;
    ProcessUtility_hook = lease_process_utility;
    prev_client_authentication_hook = ClientAuthentication_hook;
    ClientAuthentication_hook = lease_client_authentication;
    RegisterXactCallback(lease_xact_callback, nullptr);
}

extern "C" Datum autofailover_node_renew_lease(PG_FUNCTION_ARGS) {
    require_loaded();
    const int64 deadline = PG_ARGISNULL(0) ? kNeverExpires : PG_GETARG_INT64(0);
    const int pid = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
    if (deadline <= 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("deadline_ns must be positive (a value of lease_clock()) or NULL for no expiry")));
    const uint64 started = process_start_time(pid);
    if (pid != 0 && started == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no running process with pid %d", pid)));
    SpinLockAcquire(&lease->mutex);
    lease->deadline_ns = deadline;
    lease->keeper_pid = pid;
    lease->keeper_started = started;
    SpinLockRelease(&lease->mutex);
    PG_RETURN_VOID();
}

extern "C" Datum autofailover_node_lease_clock(PG_FUNCTION_ARGS) { PG_RETURN_INT64(lease_clock_ns()); }

extern "C" Datum autofailover_node_lease(PG_FUNCTION_ARGS) {
    require_loaded();
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("lease() must return a record")));
    desc = BlessTupleDesc(desc);
    const LeaseView v = read_lease();
    Datum values[5];
    bool nulls[5] = {false, false, false, false, false};
    values[0] = BoolGetDatum(v.deadline_ns != 0);
    if (v.deadline_ns == 0 || v.deadline_ns == kNeverExpires)
        nulls[1] = true;
    else
        values[1] = Int64GetDatum((v.deadline_ns - lease_clock_ns()) / 1000000);
    values[2] = Int32GetDatum(v.keeper_pid);
    values[3] = BoolGetDatum(keeper_alive(v));
    values[4] = BoolGetDatum(lease_blocks_writes());
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
