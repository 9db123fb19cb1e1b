-- A 3-node group driven only through SQL: register, report, switchover,
-- promotion, maintenance, settings. sim_step() plays every keeper once: each
-- node reports the goal the monitor gave it as reached (a perfect keeper),
-- with its LSN; sim_settle() repeats until every node reached its goal.
\set VERBOSITY terse
SELECT autofailover.create_formation('life');

CREATE TABLE sim_lsn (node_name text PRIMARY KEY, lsn pg_lsn NOT NULL);

CREATE PROCEDURE sim_step(formation text, silent text[] DEFAULT '{}') LANGUAGE plpgsql AS $$
DECLARE
    n record;
    v_lsn pg_lsn;
BEGIN
    FOR n IN SELECT s.node_id, s.node_name, s.goal_state FROM autofailover.current_state(formation) s
              WHERE s.node_name <> ALL (silent) ORDER BY s.node_id LOOP
        SELECT l.lsn INTO v_lsn FROM sim_lsn l WHERE l.node_name = n.node_name;
        IF n.goal_state = 'fast_forward' THEN
            -- a fast-forwarding node fetches WAL up to the upstream's LSN
            SELECT max(l.lsn) INTO v_lsn FROM sim_lsn l
             WHERE l.node_name IN (SELECT s.node_name FROM autofailover.current_state(formation) s);
            UPDATE sim_lsn l SET lsn = v_lsn WHERE l.node_name = n.node_name;
        END IF;
        -- a primary reports the standbys streaming from it (pg_stat_replication) with their LSNs
        PERFORM autofailover.node_active(formation, n.node_id, n.goal_state,
                                         n.goal_state NOT IN ('demoted', 'maintenance', 'dropped'),
                                         1, coalesce(v_lsn, '0/3000000'),
                                         CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                         s.ids, s.lsns)
          FROM (SELECT array_agg(o.node_id ORDER BY o.node_id) AS ids,
                       array_agg(coalesce(l.lsn, '0/3000000') ORDER BY o.node_id) AS lsns
                  FROM autofailover.current_state(formation) o LEFT JOIN sim_lsn l ON l.node_name = o.node_name
                 WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                   AND o.node_id <> n.node_id AND o.goal_state IN ('catchingup', 'secondary')
                   AND o.node_name <> ALL (silent)) s;
        COMMIT;
    END LOOP;
END $$;

CREATE PROCEDURE sim_settle(formation text, silent text[] DEFAULT '{}') LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..30 LOOP
        CALL sim_step(formation, silent);
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.current_state(formation) s
                              WHERE s.reported_state <> s.goal_state AND s.node_name <> ALL (silent));
    END LOOP;
END $$;

CREATE VIEW life_state AS
    SELECT node_name, reported_state, goal_state, candidate_priority, replication_quorum
      FROM autofailover.current_state('life') ORDER BY node_name;

-- 1. the first node becomes the primary of a single-node group
SELECT node_name, group_id, goal_state FROM autofailover.register_node('life', '127.0.0.1', 41, 'node_a');
INSERT INTO sim_lsn VALUES ('node_a', '0/3000000'), ('node_b', '0/3000000'), ('node_c', '0/3000000');
CALL sim_settle('life');
SELECT * FROM life_state;
SELECT node_name FROM autofailover.get_primary('life');

-- 2. two standbys join; the primary ends with synchronous replication on both
SELECT node_name, goal_state FROM autofailover.register_node('life', '127.0.0.1', 42, 'node_b');
CALL sim_settle('life');
SELECT node_name, goal_state FROM autofailover.register_node('life', '127.0.0.1', 43, 'node_c');
CALL sim_settle('life');
SELECT * FROM life_state;
SELECT autofailover.synchronous_standby_names('life') ~ '^ANY 1 \(autofailover_node_[0-9]+, autofailover_node_[0-9]+\)$'
    AS sync_names_ok;
SELECT node_name, is_primary FROM autofailover.get_nodes('life') ORDER BY node_name;
SELECT o.node_name, o.is_primary FROM autofailover.get_primary('life') p,
       autofailover.get_other_nodes(p.node_id) o ORDER BY 1;
SELECT node_name, primary_host, primary_port
  FROM autofailover.current_state('life') s,
       autofailover.node_active('life', s.node_id, s.reported_state, true, 1, '0/3000000',
                                CASE WHEN s.goal_state = 'secondary' THEN 'quorum' ELSE '' END) a
 ORDER BY node_name;
SELECT autofailover.formation_uri('life');

-- 3. switchover: node_c may never be promoted; node_b becomes primary
SELECT autofailover.set_node_candidate_priority('life', 'node_c', 0);
CALL sim_settle('life');
SELECT autofailover.perform_switchover('life');
CALL sim_settle('life');
SELECT * FROM life_state;

-- 4. promotion back to node_a by name
SELECT autofailover.perform_promotion('life', 'node_a');
CALL sim_settle('life');
SELECT * FROM life_state;

-- 5. maintenance of a standby and back
SELECT autofailover.start_maintenance('life', 'node_b');
CALL sim_settle('life');
SELECT * FROM life_state;
SELECT autofailover.stop_maintenance('life', 'node_b');
CALL sim_settle('life');
SELECT * FROM life_state;

-- 6. the history has one event per goal change (the core's reason in each),
-- and per reported-state change
SELECT count(*) > 0 AS has_events, bool_and(description <> '') AS every_event_has_a_reason
  FROM autofailover.last_events('life', 1000);
SELECT max(event_id) AS before_switchover FROM autofailover.events \gset
SELECT autofailover.perform_switchover('life');
SELECT node_name, reported_state, goal_state FROM autofailover.events
 WHERE formation_id = 'life' AND event_id > :before_switchover ORDER BY event_id;
CALL sim_settle('life');
SELECT * FROM life_state;
SELECT node_name FROM autofailover.get_primary('life');
