-- Brings every simulated group to primary + secondaries before measuring, with
-- perfect keepers (each node reports its goal as reached), one commit per call.
CREATE PROCEDURE bench_settle() LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR round IN 1..12 LOOP
        FOR n IN SELECT node_id, goal_state FROM autofailover.nodes
                  WHERE formation_id = 'bench' AND (reported_state <> goal_state OR last_report IS NULL
                                                    OR last_report < clock_timestamp() - interval '1 second')
                  ORDER BY node_id LOOP
            PERFORM autofailover.node_active('bench', n.node_id, n.goal_state, true, 1, '0/3000000',
                                             CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END);
            COMMIT;
        END LOOP;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.nodes
                              WHERE formation_id = 'bench' AND reported_state <> goal_state);
    END LOOP;
END $$;
