-- pg_auto_failover side of the capacity bench: every node calls node_active reporting
-- its goal as reached, one commit per call, until a whole round logs no new event.
CREATE PROCEDURE bench_pgaf_settle() LANGUAGE plpgsql AS $$
DECLARE
    n record;
    v_events bigint;
BEGIN
    FOR round IN 1..12 LOOP
        v_events := (SELECT count(*) FROM pgautofailover.event);
        FOR n IN SELECT nodeid, formationid, goalstate FROM pgautofailover.node ORDER BY nodeid LOOP
            PERFORM pgautofailover.node_active(n.formationid, n.nodeid, 0, n.goalstate, true, 1, '0/3000000',
                                               CASE WHEN n.goalstate = 'secondary' THEN 'quorum' ELSE '' END);
            COMMIT;
        END LOOP;
        EXIT WHEN (SELECT count(*) FROM pgautofailover.event) = v_events;
    END LOOP;
END $$;
