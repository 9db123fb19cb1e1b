-- The extension installs only through shared_preload_libraries (the worker).
CREATE EXTENSION autofailover;

-- The SQL enum and the core's NodeState list are the same, in the same order.
SELECT enum_range(NULL::autofailover.node_state)::text[] = autofailover.core_node_states() AS enum_matches_core;
SELECT s AS sql_only FROM unnest(enum_range(NULL::autofailover.node_state)::text[]) s
EXCEPT SELECT unnest(autofailover.core_node_states());
SELECT s AS core_only FROM unnest(autofailover.core_node_states()) s
EXCEPT SELECT unnest(enum_range(NULL::autofailover.node_state)::text[]);

-- The default formation exists; roles exist with the documented attributes.
SELECT formation_id, dbname, number_sync_standbys FROM autofailover.formations ORDER BY 1;
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'autofailover\_%' ORDER BY 1;

-- The health-check worker runs and shows in pg_stat_activity.
-- (it connects once the database exists, so give it a few seconds)
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'autofailover health check');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(*) AS health_workers FROM pg_stat_activity WHERE backend_type = 'autofailover health check';

-- Every API function is SECURITY DEFINER with a fixed search_path; no internal one is.
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'autofailover' AND p.prosecdef
 ORDER BY 1;
SELECT count(*) AS public_can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'autofailover' AND has_function_privilege('public', p.oid, 'EXECUTE');

-- Every timeout is a GUC.
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'autofailover.%' ORDER BY 1;

-- One round of perfect keepers in formation p_formation, for the tests that need a settled group:
-- each node reports its goal as reached (one commit each); a primary reports its standbys
-- streaming (pg_stat_replication) at its own LSN.
CREATE PROCEDURE keepers_step(p_formation text) LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR n IN SELECT s.node_id, s.goal_state FROM autofailover.current_state(p_formation) s ORDER BY s.node_id LOOP
        -- a primary reports the standbys streaming from it (pg_stat_replication)
        PERFORM autofailover.node_active(p_formation, n.node_id, n.goal_state, true, 1, '0/3000000',
                                         CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                         s.ids, s.lsns)
          FROM (SELECT array_agg(o.node_id ORDER BY o.node_id) AS ids,
                       array_agg('0/3000000'::pg_lsn ORDER BY o.node_id) AS lsns
                  FROM autofailover.current_state(p_formation) o
                 WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                   AND o.node_id <> n.node_id AND o.goal_state IN ('catchingup', 'secondary')) s;
        COMMIT;
    END LOOP;
END $$;
