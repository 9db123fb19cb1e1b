// See library_version.h. Plain C-style code: ereport(ERROR) from here longjmps
// over nothing to destroy.
#include "monitor_ext/library_version.h"

#include "monitor_ext/pg_include.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

#ifndef AUTOFAILOVER_LIBRARY_VERSION
#error "AUTOFAILOVER_LIBRARY_VERSION comes from monitor_ext/autofailover.control (Makefile.pgxs)"
#endif

namespace autofailover_ext {

const char* library_version() { return AUTOFAILOVER_LIBRARY_VERSION; }

namespace {

// pg_extension.extversion of `extension`, palloc'd; NULL when it is not installed.
char* installed_version(Oid extension) {
    Relation catalog = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
    SysScanDesc scan = systable_beginscan(catalog, ExtensionOidIndexId, true, nullptr, 1, &key);
    char* version = nullptr;
    HeapTuple tuple = systable_getnext(scan);
    if (HeapTupleIsValid(tuple)) {
        bool isnull = true;
        Datum value = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(catalog), &isnull);
        if (!isnull) version = text_to_cstring(DatumGetTextPP(value));
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);
    return version;
}

}  // namespace

void check_library_version() {
    const Oid extension = get_extension_oid("autofailover", true);
    if (!OidIsValid(extension)) return;  // loaded without the extension: nothing to compare
    char* installed = installed_version(extension);
    if (installed == nullptr || strcmp(installed, AUTOFAILOVER_LIBRARY_VERSION) == 0) return;
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("the autofailover library is version %s but the installed extension is version %s",
                    AUTOFAILOVER_LIBRARY_VERSION, installed),
             errhint("Install the library that matches, or run ALTER EXTENSION autofailover UPDATE; then restart "
                     "the monitor.")));
}

}  // namespace autofailover_ext

extern "C" {
PG_FUNCTION_INFO_V1(autofailover_library_version);

// autofailover.library_version(): the version the loaded library was built for.
PGDLLEXPORT Datum autofailover_library_version(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    PG_RETURN_TEXT_P(cstring_to_text(AUTOFAILOVER_LIBRARY_VERSION));
}
}
