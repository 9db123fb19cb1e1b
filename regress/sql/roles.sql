-- A keeper role may call only the keeper protocol; an operator also the
-- operator API; neither reads or writes the tables directly.
\set VERBOSITY terse
SELECT autofailover.create_formation('roles');
CREATE ROLE roles_keeper LOGIN IN ROLE autofailover_keeper;
CREATE ROLE roles_operator LOGIN IN ROLE autofailover_operator;
CREATE ROLE roles_nobody LOGIN;

SET ROLE roles_keeper;
SELECT node_name, goal_state FROM autofailover.register_node('roles', '127.0.0.1', 31, 'k1');
SELECT goal_state, primary_host, primary_port
  FROM autofailover.node_active('roles', (SELECT node_id FROM autofailover.get_primary('roles')), 'single', true, 1, '0/1');
SELECT node_name FROM autofailover.get_primary('roles');
SELECT autofailover.perform_switchover('roles');
SELECT autofailover.set_node_candidate_priority('roles', 'k1', 0);
SELECT * FROM autofailover.current_state('roles');
SELECT count(*) FROM autofailover.nodes;
UPDATE autofailover.nodes SET goal_state = 'primary';
SELECT autofailover._operator('switchover', 'roles', 0, NULL, false, NULL);
SELECT * FROM autofailover._decide('roles', 0, NULL);
RESET ROLE;

SET ROLE roles_operator;
SELECT node_name, reported_state, goal_state FROM autofailover.current_state('roles');
SELECT autofailover.set_node_candidate_priority('roles', 'k1', 10);
SELECT candidate_priority FROM autofailover.current_state('roles');
SELECT autofailover.formation_uri('roles');
DELETE FROM autofailover.nodes;
RESET ROLE;

SET ROLE roles_nobody;
SELECT node_name FROM autofailover.register_node('roles', '127.0.0.1', 32, 'k2');
SELECT * FROM autofailover.get_primary('roles');
RESET ROLE;

SELECT autofailover.remove_node_by_name('roles', 'k1', force => true);
SELECT autofailover.drop_formation('roles');
DROP ROLE roles_keeper, roles_operator, roles_nobody;
