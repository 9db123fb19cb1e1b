// Module entry: refuses to load outside shared_preload_libraries (the
// health-check worker must start with the postmaster), defines the GUCs and
// registers the worker.
#include "monitor_ext/health_worker.h"
#include "monitor_ext/leader_lease.h"
#include "monitor_ext/metrics.h"
#include "monitor_ext/monitor_settings.h"
#include "monitor_ext/pg_include.h"
#include "monitor_ext/steady_answers.h"

extern "C" {

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("autofailover must be loaded via shared_preload_libraries"),
                        errhint("Add autofailover to shared_preload_libraries in postgresql.conf and restart.")));
    autofailover_ext::define_settings();
    autofailover_ext::define_leader_lease();  // replicated monitors (docs/monitor-ha.md)
    autofailover_ext::define_metrics();  // autofailover.metrics() counters
    autofailover_ext::define_steady_answers();  // heartbeats of steady groups (docs/benchmarks.md)
    autofailover_ext::register_health_worker();
    // Last: reserving the prefix drops the postgresql.conf values of every autofailover.*
    // setting not defined yet (a replicated monitor then started without require_leader_lease).
    MarkGUCPrefixReserved("autofailover");
}

}  // extern "C"
