-- A primary that stops reporting while probes of its (closed) port fail is
-- failed over by the health-check worker alone: no operator, no keeper call
-- for the primary. The most advanced quorum standby with candidate_priority > 0
-- wins; candidate_priority 0 is never chosen, even when most advanced.
\set VERBOSITY terse
SELECT autofailover.create_formation('fo');
CREATE TABLE fo_lsn (node_name text PRIMARY KEY, lsn pg_lsn NOT NULL);
INSERT INTO fo_lsn VALUES ('fo_a', '0/5000000'), ('fo_b', '0/5000000'), ('fo_c', '0/5000000'), ('fo_d', '0/5000000');

CREATE PROCEDURE fo_step(silent text[] DEFAULT '{}') LANGUAGE plpgsql AS $$
DECLARE
    n record;
    v_lsn pg_lsn;
BEGIN
    FOR n IN SELECT s.node_id, s.node_name, s.goal_state FROM autofailover.current_state('fo') s
              WHERE s.node_name <> ALL (silent) ORDER BY s.node_id LOOP
        IF n.goal_state = 'fast_forward' THEN
            UPDATE fo_lsn l SET lsn = (SELECT max(lsn) FROM fo_lsn WHERE node_name <> ALL (silent))
             WHERE l.node_name = n.node_name;
        END IF;
        SELECT l.lsn INTO v_lsn FROM fo_lsn l WHERE l.node_name = n.node_name;
        -- a primary reports the standbys streaming from it (pg_stat_replication) with their LSNs
        PERFORM autofailover.node_active('fo', n.node_id, n.goal_state,
                                         n.goal_state NOT IN ('demoted', 'maintenance', 'dropped'), 1, v_lsn,
                                         CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                         s.ids, s.lsns)
          FROM (SELECT array_agg(o.node_id ORDER BY o.node_id) AS ids, array_agg(l.lsn ORDER BY o.node_id) AS lsns
                  FROM autofailover.current_state('fo') o JOIN fo_lsn l ON l.node_name = o.node_name
                 WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                   AND o.node_id <> n.node_id AND o.goal_state IN ('catchingup', 'secondary')
                   AND o.node_name <> ALL (silent)) s;
        COMMIT;
    END LOOP;
END $$;

CREATE PROCEDURE fo_settle(silent text[] DEFAULT '{}') LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..30 LOOP
        CALL fo_step(silent);
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.current_state('fo') s
                              WHERE s.reported_state <> s.goal_state AND s.node_name <> ALL (silent));
    END LOOP;
END $$;

CREATE VIEW fo_state AS
    SELECT node_name, reported_state, goal_state, health, keeper_reporting
      FROM autofailover.current_state('fo') ORDER BY node_name;

SELECT node_name FROM autofailover.register_node('fo', '127.0.0.1', 51, 'fo_a');
CALL fo_settle();
SELECT node_name FROM autofailover.register_node('fo', '127.0.0.1', 52, 'fo_b');
CALL fo_settle();
SELECT node_name FROM autofailover.register_node('fo', '127.0.0.1', 53, 'fo_c', candidate_priority => 0);
CALL fo_settle();
SELECT node_name FROM autofailover.register_node('fo', '127.0.0.1', 54, 'fo_d', replication_quorum => false);
CALL fo_settle();
SELECT node_name, reported_state, goal_state FROM fo_state;

-- WAL positions when the primary dies: fo_c (priority 0) is the most advanced,
-- fo_d is not a quorum standby, fo_b is behind fo_c.
UPDATE fo_lsn SET lsn = '0/7000000' WHERE node_name = 'fo_c';
UPDATE fo_lsn SET lsn = '0/7000000' WHERE node_name = 'fo_d';
UPDATE fo_lsn SET lsn = '0/6000000' WHERE node_name = 'fo_b';

-- fo_a goes silent. The standbys keep reporting every 200 ms; the probes of
-- fo_a's closed port fail. Wait until the monitor promoted someone.
CREATE PROCEDURE fo_wait_for_failover() LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..100 LOOP
        CALL fo_step(ARRAY['fo_a']);
        EXIT WHEN EXISTS (SELECT 1 FROM autofailover.current_state('fo') s
                          WHERE s.node_name <> 'fo_a' AND s.reported_state IN ('wait_primary', 'primary'));
        PERFORM pg_sleep(0.2);
        COMMIT;
    END LOOP;
END $$;
CALL fo_wait_for_failover();
CALL fo_settle(ARRAY['fo_a']);
SELECT node_name, reported_state, goal_state, health FROM fo_state;
SELECT node_name AS new_primary FROM autofailover.get_primary('fo');
-- the promoted node holds everything the most advanced standby had
SELECT lsn >= '0/7000000' AS new_primary_caught_up FROM fo_lsn
 WHERE node_name = (SELECT node_name FROM autofailover.get_primary('fo'));
-- the failover was decided with reasons naming the situation
SELECT count(*) > 0 AS failover_events FROM autofailover.last_events('fo', 1000) WHERE goal_state = 'prepare_promotion';
