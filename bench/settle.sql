-- Brings every simulated group to primary + secondaries before measuring, with
-- perfect keepers (each node reports its goal as reached), one commit per call.
CREATE PROCEDURE bench_settle() LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR round IN 1..12 LOOP
        FOR n IN SELECT node_id, group_id, goal_state FROM autofailover.nodes
                  WHERE formation_id = 'bench' AND (reported_state <> goal_state OR last_report IS NULL
                                                    OR last_report < clock_timestamp() - interval '1 second')
                  ORDER BY node_id LOOP
            -- a primary reports its group's standbys streaming (the monitor's evidence for secondary)
            PERFORM autofailover.node_active('bench', n.node_id, n.goal_state, true, 1, '0/3000000',
                                             CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                             s.ids, s.lsns)
              FROM (SELECT array_agg(o.node_id) AS ids, array_agg('0/3000000'::pg_lsn) AS lsns
                      FROM autofailover.nodes o
                     WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                       AND o.formation_id = 'bench' AND o.group_id = n.group_id AND o.node_id <> n.node_id
                       AND o.goal_state IN ('catchingup', 'secondary')) s;
            COMMIT;
        END LOOP;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.nodes
                              WHERE formation_id = 'bench' AND reported_state <> goal_state);
    END LOOP;
END $$;
