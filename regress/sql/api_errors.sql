-- Error cases and hostile input: every bad call is an ERROR with a SQLSTATE and
-- leaves nothing half-written.
\set VERBOSITY terse
-- try() shows the SQLSTATE and the message of a failing statement.
CREATE FUNCTION try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT try($q$SELECT autofailover.create_formation('errs')$q$);

-- formations
SELECT try($q$SELECT autofailover.create_formation(NULL)$q$);
SELECT try($q$SELECT autofailover.create_formation('errs')$q$);
SELECT try($q$SELECT autofailover.create_formation('bad name')$q$);
SELECT try($q$SELECT autofailover.create_formation('x''; DROP TABLE autofailover.nodes; --')$q$);
SELECT try($q$SELECT autofailover.create_formation(repeat('f', 64))$q$);
SELECT try($q$SELECT autofailover.create_formation('errs2', 'db name')$q$);
SELECT try($q$SELECT autofailover.create_formation('errs2', 'postgres', -1)$q$);
SELECT try($q$SELECT autofailover.create_formation('errs2', 'postgres', 17)$q$);
SELECT try($q$SELECT autofailover.drop_formation('no_such_formation')$q$);

-- register_node
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('no_such_formation', '127.0.0.1', 1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node(NULL, '127.0.0.1', 1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', NULL, 1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', NULL)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 0)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 65536)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', 'host; rm -rf /', 1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', 'h''ost', 1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', repeat('h', 256), 1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, repeat('n', 64))$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, '')$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, E'new\nline')$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, candidate_priority => -1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, candidate_priority => 101)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, candidate_priority => NULL)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, group_id => -1)$q$);
SELECT try($q$SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, replication_quorum => NULL)$q$);
-- nothing was written by the failed calls
SELECT count(*) AS nodes_after_errors FROM autofailover.nodes WHERE formation_id = 'errs';

-- hostile but valid names are stored verbatim, never executed
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1,
    'x''); DROP TABLE autofailover.nodes; --', system_identifier => 42);
SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 2, 'Robert"); DROP TABLE x;--');
SELECT node_name FROM autofailover.register_node('errs', '::1', 3, 'ünïcødé ☃');
SELECT node_name, host, port FROM autofailover.current_state('errs') ORDER BY node_name;
SELECT description FROM autofailover.last_events('errs', 100) ORDER BY event_id LIMIT 1;
SELECT autofailover.formation_uri('errs', 'disable');

-- duplicates: name, host:port; and a foreign system identifier
SELECT try($q$SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 4, 'x''); DROP TABLE autofailover.nodes; --')$q$);
SELECT try($q$SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 1, 'other')$q$);
SELECT try($q$SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 5, 'other', system_identifier => 43)$q$);
SELECT count(*) AS nodes_after_duplicates FROM autofailover.nodes WHERE formation_id = 'errs';
-- the constraints reject bad rows even when the functions are bypassed
SELECT try($q$INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port)
    VALUES ('no_such_formation', 0, 'z', '127.0.0.1', 9)$q$);
SELECT try($q$INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port, candidate_priority)
    VALUES ('errs', 0, 'z', '127.0.0.1', 9, 101)$q$);
SELECT try($q$INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port)
    VALUES ('errs', 0, 'z', '127.0.0.1', 1)$q$);
SELECT try($q$INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port)
    VALUES ('errs', 0, 'other', 'bad host', 9)$q$);

-- node_active
SELECT try($q$SELECT goal_state FROM autofailover.node_active('errs', -1, 'single', true, 1, '0/1')$q$);
SELECT try($q$SELECT goal_state FROM autofailover.node_active('no_such_formation', 1, 'single', true, 1, '0/1')$q$);
SELECT try($q$SELECT goal_state FROM autofailover.node_active('errs', NULL, 'single', true, 1, '0/1')$q$);
SELECT try($q$SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, NULL, true, 1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1$q$);
SELECT try($q$SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'no_such_state', true, 1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1$q$);
SELECT try($q$SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'single', true, 1, 'not an lsn') a WHERE n.formation_id = 'errs' AND n.port = 1$q$);
SELECT try($q$SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'single', true, -1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1$q$);
SELECT try($q$SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'single', true, 1, '0/1', 'bogus''') a WHERE n.formation_id = 'errs' AND n.port = 1$q$);
-- a node of another formation is unknown here
SELECT regexp_replace(try($q$SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('default', n.node_id, 'single', true, 1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1$q$),
    'node [0-9]+', 'node N') AS error;
SELECT count(*) AS reports_stored FROM autofailover.nodes WHERE formation_id = 'errs' AND last_report IS NOT NULL;

-- reads
SELECT try($q$SELECT * FROM autofailover.get_primary('no_such_formation')$q$);
SELECT try($q$SELECT * FROM autofailover.get_nodes('no_such_formation')$q$);
SELECT try($q$SELECT * FROM autofailover.get_other_nodes(-1)$q$);
SELECT try($q$SELECT * FROM autofailover.get_other_nodes(NULL)$q$);
SELECT try($q$SELECT * FROM autofailover.current_state('no_such_formation')$q$);
SELECT try($q$SELECT * FROM autofailover.last_events('errs', -1)$q$);
SELECT try($q$SELECT * FROM autofailover.formation_settings(NULL)$q$);
SELECT try($q$SELECT autofailover.formation_uri('errs', 'bogus')$q$);
SELECT try($q$SELECT autofailover.formation_uri('no_such_formation')$q$);
SELECT try($q$SELECT autofailover.synchronous_standby_names('no_such_formation')$q$);

-- operator commands on unknown things
SELECT try($q$SELECT autofailover.perform_switchover('no_such_formation')$q$);
SELECT try($q$SELECT autofailover.perform_switchover('errs', 7)$q$);
SELECT try($q$SELECT autofailover.perform_failover('errs', NULL)$q$);
SELECT try($q$SELECT autofailover.perform_promotion('errs', 'no_such_node')$q$);
SELECT try($q$SELECT autofailover.perform_promotion('errs', NULL)$q$);
SELECT try($q$SELECT autofailover.start_maintenance('errs', 'no_such_node')$q$);
SELECT try($q$SELECT autofailover.stop_maintenance('no_such_formation', 'x')$q$);
SELECT try($q$SELECT autofailover.set_node_candidate_priority('errs', 'other', 101)$q$);
SELECT try($q$SELECT autofailover.set_node_candidate_priority('errs', 'no_such_node', 10)$q$);
SELECT try($q$SELECT autofailover.set_node_replication_quorum('errs', 'no_such_node', NULL)$q$);
SELECT try($q$SELECT autofailover.set_formation_number_sync_standbys('errs', 99)$q$);
SELECT try($q$SELECT autofailover.remove_node(-1)$q$);
SELECT try($q$SELECT autofailover.remove_node_by_name('errs', 'no_such_node')$q$);
SELECT try($q$SELECT autofailover.drop_formation('errs')$q$);

-- cleanup through the API
SELECT autofailover.remove_node_by_name('errs', node_name, force => true)
  FROM autofailover.nodes WHERE formation_id = 'errs' ORDER BY node_id;
SELECT try($q$SELECT autofailover.drop_formation('errs')$q$);
SELECT count(*) AS formations_left FROM autofailover.formations WHERE formation_id = 'errs';
