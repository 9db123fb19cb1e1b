-- The bootstrap keeper role may only register; each node's keeper then logs in
-- as its own role and runs the keeper protocol for that node only; an operator
-- also runs the operator API; nobody reads or writes the tables directly.
-- (docs/security.md has the attack-by-attack suite: hostile_api.)
\set VERBOSITY terse
SELECT autofailover.create_formation('roles');
CREATE ROLE roles_keeper LOGIN IN ROLE autofailover_keeper;
CREATE ROLE roles_operator LOGIN IN ROLE autofailover_operator;
CREATE ROLE roles_nobody LOGIN;

SET ROLE roles_keeper;
SELECT node_name, goal_state, keeper_role ~ '^autofailover_keeper_[0-9]+$' AS own_role,
       length(keeper_password) AS password_length, length(replication_password) AS replication_password_length
  FROM autofailover.register_node('roles', '127.0.0.1', 31, 'k1');
SELECT node_name FROM autofailover.get_primary('roles');
SELECT autofailover.perform_switchover('roles');
SELECT * FROM autofailover.current_state('roles');
SELECT count(*) FROM autofailover.nodes;
RESET ROLE;

-- The node's role: a LOGIN role with a SCRAM password, member of the keepers' group only.
SELECT r.rolcanlogin, r.rolsuper, r.rolconnlimit, a.rolpassword LIKE 'SCRAM-SHA-256$%' AS scram,
       array(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = r.oid) AS member_of
  FROM autofailover.nodes n JOIN pg_roles r ON r.rolname = n.keeper_role JOIN pg_authid a ON a.oid = r.oid
 WHERE n.formation_id = 'roles';
SELECT keeper_role AS k1_role, node_id AS k1_id FROM autofailover.nodes WHERE node_name = 'k1' AND formation_id = 'roles' \gset

SET SESSION AUTHORIZATION :"k1_role";
SELECT goal_state, primary_host, primary_port FROM autofailover.node_active('roles', :k1_id, 'single', true, 1, '0/1');
SELECT node_name FROM autofailover.get_primary('roles');
SELECT node_name FROM autofailover.get_nodes('roles');
SELECT count(*) FROM autofailover.get_other_nodes(:k1_id);
SELECT node_name FROM autofailover.register_node('roles', '127.0.0.1', 33, 'k3');
SELECT autofailover.perform_switchover('roles');
SELECT autofailover.set_node_candidate_priority('roles', 'k1', 0);
SELECT * FROM autofailover.current_state('roles');
SELECT count(*) FROM autofailover.nodes;
UPDATE autofailover.nodes SET goal_state = 'primary';
SELECT autofailover._operator('switchover', 'roles', 0, NULL, false, NULL);
SELECT * FROM autofailover._decide('roles', 0, NULL);
RESET SESSION AUTHORIZATION;

SET ROLE roles_operator;
SELECT node_name, reported_state, goal_state FROM autofailover.current_state('roles');
SELECT autofailover.set_node_candidate_priority('roles', 'k1', 10);
SELECT candidate_priority FROM autofailover.current_state('roles');
SELECT autofailover.formation_uri('roles');
DELETE FROM autofailover.nodes;
SELECT count(*) FROM autofailover.formation_secrets;
RESET ROLE;

SET ROLE roles_nobody;
SELECT node_name FROM autofailover.register_node('roles', '127.0.0.1', 32, 'k2');
SELECT * FROM autofailover.get_primary('roles');
RESET ROLE;

-- Removing the node drops its role.
SELECT autofailover.remove_node_by_name('roles', 'k1', force => true);
SELECT count(*) AS k1_role_left FROM pg_roles WHERE rolname = :'k1_role';
SELECT autofailover.drop_formation('roles');
DROP ROLE roles_keeper, roles_operator, roles_nobody;
