-- Heartbeats of a steady group are answered from shared memory (monitor_ext/steady_answers.h):
-- only a keeper's own session is answered there, only while the group is steady, and every
-- write a decision reads voids the cached answers, so the next heartbeat takes the full path.
\set VERBOSITY terse
-- Health is set by hand below: the health worker must not probe these made-up nodes meanwhile.
ALTER SYSTEM SET autofailover.health_check_period = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT autofailover.create_formation('sa');

CREATE VIEW sa_state AS
    SELECT node_name, reported_state, goal_state FROM autofailover.current_state('sa') ORDER BY node_name;

SELECT node_name, goal_state FROM autofailover.register_node('sa', '127.0.0.1', 71, 'sa_a');
CALL keepers_step('sa');
SELECT node_name, goal_state FROM autofailover.register_node('sa', '127.0.0.1', 72, 'sa_b');
CALL keepers_step('sa'); CALL keepers_step('sa'); CALL keepers_step('sa'); CALL keepers_step('sa'); CALL keepers_step('sa');
SELECT * FROM sa_state;
SELECT node_id AS sa_a, keeper_role AS role_a FROM autofailover.nodes WHERE node_name = 'sa_a' \gset
SELECT node_id AS sa_b, keeper_role AS role_b FROM autofailover.nodes WHERE node_name = 'sa_b' \gset
UPDATE autofailover.node_health SET health = 'good', last_health_check = clock_timestamp()
 WHERE node_id IN (:sa_a, :sa_b);
SELECT answers_from_cache AS c0 FROM autofailover._steady_answer_counts() \gset

-- 1. Each keeper's first heartbeat is decided and cached (it is another role than the
--    operator's of the steps above), its second is answered from shared memory.
SET SESSION AUTHORIZATION :"role_a";
SELECT goal_state, synchronous_standby_names = 'ANY 1 (autofailover_node_' || :sa_b || ')' AS names_b
  FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000100', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000100']::pg_lsn[]);
SELECT goal_state, synchronous_standby_names = 'ANY 1 (autofailover_node_' || :sa_b || ')' AS names_b
  FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000200', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000200']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :"role_b";
SELECT goal_state, primary_port FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000100', 'quorum');
SELECT goal_state, primary_port FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000200', 'quorum');
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache, nodes_with_answer FROM autofailover._steady_answer_counts();
-- The table keeps the last decided report; every reader sees the newer heartbeat.
SELECT s.node_name, n.lsn AS stored_lsn, s.lsn, s.keeper_last_report > n.last_report AS newer_report
  FROM autofailover.current_state('sa') s JOIN autofailover.nodes n USING (node_id) ORDER BY s.node_name;
SELECT node_name, lsn FROM autofailover.get_nodes('sa');

-- 2. A report that differs in anything but its LSNs takes the full path.
SET SESSION AUTHORIZATION :"role_b";
SELECT goal_state FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000300', 'async');
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();

-- 3. A write the decision reads (here by hand) voids the group's answers: the next
--    heartbeat is decided again and sees it; the one after is answered from the cache again.
SET SESSION AUTHORIZATION :"role_b";
SELECT candidate_priority FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000400', 'quorum');
SELECT candidate_priority FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000500', 'quorum');
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();
UPDATE autofailover.nodes SET candidate_priority = 10 WHERE node_id = :sa_b;
SET SESSION AUTHORIZATION :"role_b";
SELECT candidate_priority FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000600', 'quorum');
SELECT candidate_priority FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000650', 'quorum');
SELECT candidate_priority FROM autofailover.node_active('sa', :sa_b, 'secondary', true, 1, '0/3000680', 'quorum');
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();

-- 4. A rolled-back write voids them too (the trigger counts, not the commit).
SET SESSION AUTHORIZATION :"role_a";
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000700', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000700']::pg_lsn[]);
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000750', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000750']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();
BEGIN;
UPDATE autofailover.nodes SET replication_quorum = false WHERE node_id = :sa_b;
ROLLBACK;
SET SESSION AUTHORIZATION :"role_a";
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000800', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000800']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();

-- A prepared transaction would commit later with nothing to void the answers after it: refused.
BEGIN;
UPDATE autofailover.nodes SET candidate_priority = 20 WHERE node_id = :sa_b;
PREPARE TRANSACTION 'sa_prepared';
SELECT candidate_priority FROM autofailover.nodes WHERE node_id = :sa_b;

-- 5. A health change voids the answers of that node's group only: another formation's
--    node changing health leaves them (the first call is decided again after the refused
--    PREPARE above voided them, the second is answered from the cache) ...
SET SESSION AUTHORIZATION :"role_a";
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000880', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000880']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();
WITH changed AS (
    UPDATE autofailover.node_health h SET health = CASE WHEN h.health = 'good' THEN 'bad' ELSE 'good' END
     WHERE h.node_id = (SELECT min(n.node_id) FROM autofailover.nodes n
                         WHERE n.formation_id <> 'sa' AND autofailover._heartbeat_at(n.node_id) IS NOT NULL)
    RETURNING 1)
SELECT count(*) AS other_group_health_changed FROM changed;
SET SESSION AUTHORIZATION :"role_a";
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000890', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000890']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();
-- ... and once a node of the group fails its probes, the group is not steady: no answer
-- from shared memory, the decision runs on every heartbeat.
UPDATE autofailover.node_health SET health = 'bad' WHERE node_id = :sa_b;
SET SESSION AUTHORIZATION :"role_a";
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000900', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000900']::pg_lsn[]);
SELECT goal_state FROM autofailover.node_active('sa', :sa_a, 'primary', true, 1,
    '0/3000a00', '', ARRAY[:sa_b]::bigint[], ARRAY['0/3000a00']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT answers_from_cache - :c0 AS answered_from_cache FROM autofailover._steady_answer_counts();

-- 6. Heartbeat columns written by anything but node_active (a test simulating a silent
--    keeper) count again: the heartbeat kept in shared memory is dropped.
UPDATE autofailover.nodes SET last_report = clock_timestamp() - interval '1 hour', lsn = '0/1000000'
 WHERE node_id = :sa_a;
SELECT node_name, lsn, keeper_last_report < now() - interval '30 minutes' AS silent
  FROM autofailover.current_state('sa') WHERE node_name = 'sa_a';

ALTER SYSTEM RESET autofailover.health_check_period;
SELECT pg_reload_conf();
