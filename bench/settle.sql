-- Brings every simulated group to primary + secondaries before measuring, with
-- perfect keepers (each node reports its goal as reached, a primary its group's
-- standbys streaming at its own LSN), one commit per call. Every node of a group
-- not yet settled reports in every round: the monitor needs the primary's report
-- of the stream after the standby's, so one pass is not enough.
CREATE PROCEDURE bench_settle() LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR round IN 1..20 LOOP
        FOR n IN SELECT node_id, group_id, goal_state FROM autofailover.nodes
                  WHERE formation_id = 'bench'
                    AND group_id IN (SELECT u.group_id FROM autofailover.nodes u WHERE u.formation_id = 'bench'
                                      GROUP BY u.group_id
                                     HAVING bool_or(u.reported_state IS DISTINCT FROM u.goal_state
                                                    OR u.goal_state NOT IN ('single', 'primary', 'secondary')))
                  ORDER BY node_id LOOP
            PERFORM autofailover.node_active('bench', n.node_id, n.goal_state, true, 1, '0/3000000',
                                             CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                             s.ids, s.lsns)
              FROM (SELECT coalesce(array_agg(o.node_id), '{}') AS ids,
                           coalesce(array_agg('0/3000000'::pg_lsn), '{}') AS lsns
                      FROM autofailover.nodes o
                     WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                       AND o.formation_id = 'bench' AND o.group_id = n.group_id AND o.node_id <> n.node_id
                       AND o.goal_state IN ('catchingup', 'secondary')) s;
            COMMIT;
        END LOOP;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.nodes
                              WHERE formation_id = 'bench'
                                AND (reported_state IS DISTINCT FROM goal_state
                                     OR goal_state NOT IN ('single', 'primary', 'secondary')));
    END LOOP;
END $$;
