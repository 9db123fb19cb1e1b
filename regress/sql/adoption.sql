-- A new, empty monitor adopts the nodes of a running formation (docs/monitor-ha.md,
-- M6): adopt_node keeps node ids, names, priorities and quorum, accepts the
-- primary as it runs, makes standbys catchingup, and holds elections while the
-- primary is not adopted yet. Refused: a second primary claim, a node adopted
-- twice, a node in transition, timelines that contradict each other, a node's own
-- role, a stranger. (Ids are given by the caller here, never sequence-generated.)
\set VERBOSITY terse
CREATE SCHEMA adoption_test;
GRANT USAGE ON SCHEMA adoption_test TO PUBLIC;
CREATE FUNCTION adoption_test.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION adoption_test.try(text) TO PUBLIC;

SELECT autofailover.create_formation('adoption');
CREATE ROLE adoption_bootstrap LOGIN IN ROLE autofailover_keeper;
CREATE ROLE adoption_stranger LOGIN;

-- The standby first: no primary is known yet, so no election may start.
SET SESSION AUTHORIZATION adoption_bootstrap;
SELECT node_id, node_name, group_id, goal_state, keeper_role
  FROM autofailover.adopt_node('adoption', 900002, 'ad_b', '10.3.0.2', 5432, 0, 'secondary', 1, '0/5000000', 40, true);
RESET SESSION AUTHORIZATION;
SELECT adoption_deadline > now() AS grace_running FROM autofailover.groups WHERE formation_id = 'adoption';
SELECT autofailover.run_decision('adoption', 0) LIKE 'adoption: no primary adopted%' AS election_held;
SELECT node_name, reported_state, goal_state FROM autofailover.nodes WHERE formation_id = 'adoption';

-- The primary, as it runs: no failover, the grace is over.
SET SESSION AUTHORIZATION adoption_bootstrap;
SELECT node_id, node_name, group_id, goal_state, keeper_role
  FROM autofailover.adopt_node('adoption', 900001, 'ad_a', '10.3.0.1', 5432, 0, 'primary', 1, '0/5000100', 60, true);
RESET SESSION AUTHORIZATION;
SELECT adoption_deadline IS NULL AS grace_over FROM autofailover.groups WHERE formation_id = 'adoption';

-- Refusals.
SET SESSION AUTHORIZATION adoption_bootstrap;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900003, 'ad_c', '10.3.0.3', 5432, 0,
    'wait_primary', 1, '0/5000100')$q$) AS second_primary;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900001, 'ad_a2', '10.3.0.9', 5432, 0,
    'primary', 1, '0/5000100')$q$) AS adopted_twice;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900004, 'ad_d', '10.3.0.4', 5432, 0,
    'report_lsn', 1, '0/5000100')$q$) AS in_transition;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900005, 'ad_e', '10.3.0.5', 5432, 0,
    'secondary', 2, '0/5000100')$q$) AS standby_ahead;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900006, 'ad_b', '10.3.0.6', 5432, 0,
    'secondary', 1, '0/5000100')$q$) AS name_taken;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900007, 'ad_f', 'all', 5432, 0,
    'secondary', 1, '0/5000100')$q$) AS bad_host;
RESET SESSION AUTHORIZATION;
SET autofailover.max_nodes_per_group = 2;
SET SESSION AUTHORIZATION adoption_bootstrap;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900012, 'ad_i', '10.3.0.12', 5432, 0,
    'secondary', 1, '0/5000100')$q$) AS group_full;
RESET SESSION AUTHORIZATION;
RESET autofailover.max_nodes_per_group;
SET SESSION AUTHORIZATION adoption_bootstrap;
SET SESSION AUTHORIZATION autofailover_keeper_900002;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900008, 'ad_g', '10.3.0.8', 5432, 0,
    'secondary', 1, '0/5000100')$q$) AS node_role;
SET SESSION AUTHORIZATION adoption_stranger;
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900009, 'ad_h', '10.3.0.9', 5432, 0,
    'secondary', 1, '0/5000100')$q$) AS stranger;
RESET SESSION AUTHORIZATION;

-- A primary claim from an older timeline than an adopted standby's, in another group.
SET SESSION AUTHORIZATION adoption_bootstrap;
SELECT goal_state FROM autofailover.adopt_node('adoption', 900011, 'ad_g1b', '10.3.1.2', 5432, 1, 'catchingup', 3,
    '0/7000000');
SELECT adoption_test.try($q$SELECT * FROM autofailover.adopt_node('adoption', 900010, 'ad_g1a', '10.3.1.1', 5432, 1,
    'primary', 2, '0/7000000')$q$) AS primary_behind;
RESET SESSION AUTHORIZATION;

-- The adopted nodes run on with their own roles: the primary relaxes synchronous
-- replication until it sees the standby stream, which then becomes secondary again.
SET SESSION AUTHORIZATION autofailover_keeper_900001;
SELECT goal_state FROM autofailover.node_active('adoption', 900001, 'primary', true, 1, '0/5000200');
SELECT goal_state FROM autofailover.node_active('adoption', 900001, 'wait_primary', true, 1, '0/5000200');
SET SESSION AUTHORIZATION autofailover_keeper_900002;
SELECT goal_state FROM autofailover.node_active('adoption', 900002, 'catchingup', true, 1, '0/5000200');
SET SESSION AUTHORIZATION autofailover_keeper_900001;
SELECT goal_state FROM autofailover.node_active('adoption', 900001, 'wait_primary', true, 1, '0/5000200', '',
    '{900002}', '{0/5000200}');
SET SESSION AUTHORIZATION autofailover_keeper_900002;
SELECT goal_state FROM autofailover.node_active('adoption', 900002, 'secondary', true, 1, '0/5000200');
RESET SESSION AUTHORIZATION;
SELECT node_id, node_name, reported_state, goal_state, candidate_priority, replication_quorum
  FROM autofailover.current_state('adoption') WHERE group_id = 0 ORDER BY node_id;
SELECT description FROM autofailover.events WHERE formation_id = 'adoption' AND node_id IN (900001, 900002)
 ORDER BY event_id;
-- Registrations after an adoption get ids past the adopted ones.
SELECT node_id > 900011 AS id_after_adopted FROM autofailover.register_node('adoption', '10.3.0.20', 5432, 'ad_new');
