-- autoctl set formation allow-clients (docs/clients.md): the formation's client
-- networks live on the monitor; node_active returns only their version, and a
-- keeper fetches the list with formation_client_access() when it changed. Values
-- are checked with the keeper's own validators; only operators may set them.
\set VERBOSITY terse
CREATE SCHEMA fclients_test;
GRANT USAGE ON SCHEMA fclients_test TO PUBLIC;
CREATE FUNCTION fclients_test.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM, 'autofailover_keeper_[0-9]+',
                                                             'autofailover_keeper_<id>', 'g'),
                                              'node [0-9]+', 'node <id>', 'g');
END $$;
SELECT autofailover.create_formation('fclients');
SELECT autofailover.create_formation('fclients_other');
CREATE ROLE fclients_bootstrap LOGIN IN ROLE autofailover_keeper;
CREATE ROLE fclients_operator LOGIN IN ROLE autofailover_operator;
CREATE ROLE fclients_stranger LOGIN;
GRANT EXECUTE ON FUNCTION fclients_test.try(text) TO PUBLIC;

SET SESSION AUTHORIZATION fclients_bootstrap;
SELECT node_id AS n1_id, keeper_role AS n1_role FROM autofailover.register_node('fclients', '10.3.0.1', 5432, 'fc1') \gset
SELECT node_id AS n2_id, keeper_role AS n2_role FROM autofailover.register_node('fclients', '10.3.0.2', 5432, 'fc2') \gset
SELECT node_id AS o1_id, keeper_role AS o1_role FROM autofailover.register_node('fclients_other', '10.3.1.1', 5432, 'fo1') \gset
RESET SESSION AUTHORIZATION;

-- Never set: version 0, nothing to fetch, no row.
SET SESSION AUTHORIZATION :"n1_role";
SELECT goal_state, client_access_version FROM autofailover.node_active('fclients', :n1_id, 'single', true, 1, '0/5000000');
SELECT * FROM autofailover.formation_client_access('fclients');
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM autofailover.formation_client_access;

-- An operator sets the list: version 1, an event, both keepers see the new version.
SET SESSION AUTHORIZATION fclients_operator;
SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.20.0.0/24', '10.30.0.5', 'fd00::/8']);
SELECT description FROM autofailover.last_events('fclients', 1);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :"n1_role";
SELECT client_access_version FROM autofailover.node_active('fclients', :n1_id, 'single', true, 1, '0/5000000');
SELECT * FROM autofailover.formation_client_access('fclients');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :"n2_role";
SELECT client_access_version FROM autofailover.node_active('fclients', :n2_id, 'wait_standby', true, 1, '0/0');
SELECT * FROM autofailover.formation_client_access('fclients');
RESET SESSION AUTHORIZATION;
-- Another formation is not affected.
SET SESSION AUTHORIZATION :"o1_role";
SELECT client_access_version FROM autofailover.node_active('fclients_other', :o1_id, 'single', true, 1, '0/1');
RESET SESSION AUTHORIZATION;

-- Replaced (with role and database), then removed: the version only grows.
SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.40.0.0/16'], 'app,reports', '+app_users');
SELECT * FROM autofailover.formation_client_access('fclients');
SELECT autofailover.set_formation_allow_clients('fclients', '{}');
SELECT * FROM autofailover.formation_client_access('fclients');
SELECT description FROM autofailover.last_events('fclients', 2);
SET SESSION AUTHORIZATION :"n1_role";
SELECT client_access_version FROM autofailover.node_active('fclients', :n1_id, 'single', true, 1, '0/5000000');
RESET SESSION AUTHORIZATION;

-- Refused, nothing changed: what would open more than the named networks, or is no network.
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['all'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8', 'samenet'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.1.2.3/8'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['app.example.com'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8 trust'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY[E'10.0.0.0/8\nhost all all 0.0.0.0/0 trust'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/33'])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY[NULL]::text[])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', NULL)$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY[['10.0.0.0/8'], ['10.1.0.0/16']])$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients',
                        ARRAY(SELECT '10.' || i || '.0.0/16' FROM generate_series(1, 65) i))$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8'], 'replication')$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8'], 'all', 'autofailover_replicator')$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8'], 'all', 'all,+autofailover_node_keepers')$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8'], 'all', 'app user')$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['10.0.0.0/8'], 'all', NULL)$$);
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('no_such_formation', ARRAY['10.0.0.0/8'])$$);
SELECT version, networks FROM autofailover.formation_client_access('fclients');
-- The table refuses the same, whoever writes it.
SELECT fclients_test.try($$INSERT INTO autofailover.formation_client_access (formation_id, networks) VALUES ('fclients_other', ARRAY['samenet'])$$);
SELECT fclients_test.try($$UPDATE autofailover.formation_client_access SET client_role = 'autofailover_monitor'$$);

-- Who may: operators set and read; a keeper reads its own formation only and sets nothing; nobody else.
SET SESSION AUTHORIZATION :"n1_role";
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['0.0.0.0/0'])$$);
SELECT fclients_test.try($$SELECT * FROM autofailover.formation_client_access('fclients_other')$$);
SELECT fclients_test.try($$SELECT * FROM autofailover.formation_client_access$$);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION fclients_bootstrap;
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['0.0.0.0/0'])$$);
SELECT fclients_test.try($$SELECT * FROM autofailover.formation_client_access('fclients')$$);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION fclients_stranger;
SELECT fclients_test.try($$SELECT autofailover.set_formation_allow_clients('fclients', ARRAY['0.0.0.0/0'])$$);
SELECT fclients_test.try($$SELECT * FROM autofailover.formation_client_access('fclients')$$);
SELECT fclients_test.try($$SELECT autofailover._client_network_problem('all')$$);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION fclients_operator;
SELECT version, networks FROM autofailover.formation_client_access('fclients');
SELECT formation_id, version FROM autofailover.formation_client_access ORDER BY 1;
RESET SESSION AUTHORIZATION;

-- The validators themselves ('' = accepted).
SELECT v, autofailover._client_network_problem(v) = '' AS accepted
  FROM unnest(ARRAY['10.0.0.0/8', '10.0.0.5', 'fd00::/8', '::1', '0.0.0.0/0', 'all', 'samehost', '10.0.0.1/8',
                    'example.com', '']) v;

-- Dropping a formation drops its list.
SELECT autofailover.set_formation_allow_clients('fclients_other', ARRAY['10.50.0.0/24']);
SELECT autofailover.remove_node_by_name('fclients_other', 'fo1', true);
SELECT autofailover.drop_formation('fclients_other');
SELECT count(*) FROM autofailover.formation_client_access WHERE formation_id = 'fclients_other';

-- clean up
SELECT count(*) >= 0 AS removed FROM autofailover.nodes n,
       LATERAL autofailover.remove_node_by_name(n.formation_id, n.node_name, true) r
 WHERE n.formation_id = 'fclients';
SELECT autofailover.drop_formation('fclients');
DROP ROLE fclients_bootstrap, fclients_operator, fclients_stranger;
DROP SCHEMA fclients_test CASCADE;
