// The bound on how long a keeper may keep the decision locks (docs/api.md,
// "Locking"; docs/security.md, "Monitor API and locks"). The locks are row locks
// on the formation's and the group's rows that only the extension's functions
// take, so nobody can take them directly. A keeper could still keep them by
// leaving the transaction of its call open (BEGIN, a pipeline without Sync,
// `SELECT node_active(...), pg_sleep(60)`) and so stall its group's decisions.
// guard_decision_lock(acquired), called by the lock helpers around each lock,
// bounds that in a session that is not an operator's: before the lock, waiting
// is bounded by lock_timeout = 2 x autofailover.keeper_transaction_limit (an
// ERROR, not a stall; long enough to outlast a holder that is cut off); from the
// first lock on, the transaction must end within keeper_transaction_limit, or
// the session is terminated. Plain C-style code: no C++ object lives in these frames.
#include "monitor_ext/decision_lock.h"
#include "monitor_ext/group_store.h"
#include "monitor_ext/monitor_settings.h"
#include "monitor_ext/pg_include.h"

extern "C" {
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/timeout.h"
}

namespace {

TimeoutId limit_timeout = MAX_TIMEOUTS;  // registered on first use in this backend
bool armed = false;                      // in the current transaction
volatile sig_atomic_t limit_reached = false;

// Runs in the SIGALRM handler: end the session the way pg_terminate_backend() would.
void on_limit_reached(void) {
    limit_reached = true;
    die(SIGALRM);
}

void on_transaction_end(XactEvent event, void* /*arg*/) {
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            if (armed) disable_timeout(limit_timeout, false);
            armed = false;
            break;
        default:
            break;
    }
}

// One line in the server log says why the session ended (die() says "administrator command").
void log_if_limit_reached(int /*code*/, Datum /*arg*/) {
    if (limit_reached)
        ereport(LOG, (errmsg("autofailover: terminated the session of role \"%s\": its transaction kept or "
                             "waited for a decision lock longer than autofailover.keeper_transaction_limit (%d ms)",
                             GetUserNameFromId(GetSessionUserId(), true) ? GetUserNameFromId(GetSessionUserId(), true)
                                                                          : "?",
                             autofailover_ext::keeper_transaction_limit_ms())));
}

}  // namespace

namespace autofailover_ext {

bool is_operator_session() {
    const Oid session = GetSessionUserId();
    if (superuser_arg(session)) return true;
    const Oid operator_role = get_role_oid("autofailover_operator", true);
    return OidIsValid(operator_role) && is_member_of_role(session, operator_role);
}

namespace {

SPIPlanPtr lock_formation_plan = nullptr;
SPIPlanPtr lock_group_plan = nullptr;

// Locks the one row `plan` selects FOR NO KEY UPDATE, guarded; false when there is none.
bool lock_row(SPIPlanPtr plan, Datum* args) {
    guard_decision_lock(false);
    if (SPI_execute_plan(plan, args, nullptr, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "autofailover: taking a decision lock failed");
    if (SPI_processed != 1) return false;
    guard_decision_lock(true);
    return true;
}

}  // namespace

void lock_formation(const char* formation) {
    Oid types[1] = {TEXTOID};
    Datum args[1] = {CStringGetTextDatum(formation)};
    SPIPlanPtr plan = prepare_once(&lock_formation_plan,
                                   "SELECT 1 FROM autofailover.formations f WHERE f.formation_id = $1 "
                                   "FOR NO KEY UPDATE OF f",
                                   1, types);
    if (!lock_row(plan, args))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("formation \"%s\" does not exist", quoted_prefix(formation)),
                        errhint("Create it with autofailover.create_formation().")));
}

void lock_group(const char* formation, int group_id) {
    Oid types[2] = {TEXTOID, INT4OID};
    Datum args[2] = {CStringGetTextDatum(formation), Int32GetDatum(group_id)};
    SPIPlanPtr plan = prepare_once(&lock_group_plan,
                                   "SELECT 1 FROM autofailover.groups g WHERE g.formation_id = $1 AND g.group_id = $2 "
                                   "FOR NO KEY UPDATE OF g",
                                   2, types);
    if (!lock_row(plan, args))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("group %d of formation \"%s\" has no nodes", group_id, quoted_prefix(formation))));
}

void guard_decision_lock(bool acquired) {
    if (armed || is_operator_session()) return;
    if (!acquired) {
        const int wait_ms = 2 * keeper_transaction_limit_ms();
        if (LockTimeout == 0 || LockTimeout > wait_ms) {
            char value[32];
            snprintf(value, sizeof value, "%d", wait_ms);
            (void)set_config_option("lock_timeout", value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
        }
        return;
    }
    if (limit_timeout == MAX_TIMEOUTS) {
        limit_timeout = RegisterTimeout(USER_TIMEOUT, on_limit_reached);
        RegisterXactCallback(on_transaction_end, nullptr);
        before_shmem_exit(log_if_limit_reached, (Datum)0);
    }
    enable_timeout_after(limit_timeout, keeper_transaction_limit_ms());
    armed = true;
}

}  // namespace autofailover_ext

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_lock_formation);
PG_FUNCTION_INFO_V1(autofailover_lock_group);

// _lock_formation(formation), _lock_group(formation, group_id): the SQL API's decision locks, the
// same code as the C callers'. Arguments are checked by the callers (NULL: no such row).
PGDLLEXPORT Datum autofailover_lock_formation(PG_FUNCTION_ARGS) {
    SPI_connect();
    autofailover_ext::lock_formation(PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0)));
    SPI_finish();
    PG_RETURN_VOID();
}

PGDLLEXPORT Datum autofailover_lock_group(PG_FUNCTION_ARGS) {
    SPI_connect();
    autofailover_ext::lock_group(PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0)),
                                 PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1));
    SPI_finish();
    PG_RETURN_VOID();
}

}  // extern "C"
