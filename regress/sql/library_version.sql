-- The loaded library matches the installed SQL (monitor_ext/library_version.cpp).
SELECT autofailover.library_version() = extversion AS library_matches_sql
  FROM pg_catalog.pg_extension WHERE extname = 'autofailover';
-- An installed version the library was not built for: every C function that reads or
-- writes the tables refuses (55000), before it touches them.
BEGIN;
UPDATE pg_catalog.pg_extension SET extversion = '0.9' WHERE extname = 'autofailover';
SELECT goal_state FROM autofailover._decide('default', 0, NULL);
ROLLBACK;
-- The dry-run planner (perform ... --dry-run) too.
BEGIN;
UPDATE pg_catalog.pg_extension SET extversion = '0.9' WHERE extname = 'autofailover';
SELECT count(*) FROM autofailover._operator_preview('switchover', 'default', 0, NULL, false);
ROLLBACK;
-- Back to the matching version: the same call is served.
SELECT count(*) >= 0 AS served FROM autofailover._decide('default', 0, NULL);
-- The keeper and operator roles may read it (they warn on a mismatch).
SELECT has_function_privilege('autofailover_node_keepers', 'autofailover.library_version()', 'EXECUTE') AS keepers,
       has_function_privilege('autofailover_operator', 'autofailover.library_version()', 'EXECUTE') AS operators;
