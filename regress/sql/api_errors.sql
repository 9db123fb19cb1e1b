-- Error cases and hostile input: every bad call is an ERROR with a SQLSTATE and
-- leaves nothing half-written.
\set VERBOSITY terse
\set ON_ERROR_STOP 0
SELECT autofailover.create_formation('errs');

-- formations
SELECT autofailover.create_formation(NULL);
SELECT autofailover.create_formation('errs');
SELECT autofailover.create_formation('bad name');
SELECT autofailover.create_formation('x''; DROP TABLE autofailover.nodes; --');
SELECT autofailover.create_formation(repeat('f', 64));
SELECT autofailover.create_formation('errs2', 'db name');
SELECT autofailover.create_formation('errs2', 'postgres', -1);
SELECT autofailover.create_formation('errs2', 'postgres', 17);
SELECT autofailover.drop_formation('no_such_formation');

-- register_node
SELECT node_name, goal_state FROM autofailover.register_node('no_such_formation', '127.0.0.1', 1);
SELECT node_name, goal_state FROM autofailover.register_node(NULL, '127.0.0.1', 1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', NULL, 1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', NULL);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 0);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 65536);
SELECT node_name, goal_state FROM autofailover.register_node('errs', 'host; rm -rf /', 1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', 'h''ost', 1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', repeat('h', 256), 1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, repeat('n', 64));
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, '');
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, E'new\nline');
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, candidate_priority => -1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, candidate_priority => 101);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, candidate_priority => NULL);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, group_id => -1);
SELECT node_name, goal_state FROM autofailover.register_node('errs', '127.0.0.1', 1, replication_quorum => NULL);
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
SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 4, 'x''); DROP TABLE autofailover.nodes; --');
SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 1, 'other');
SELECT node_name FROM autofailover.register_node('errs', '127.0.0.1', 5, 'other', system_identifier => 43);
SELECT count(*) AS nodes_after_duplicates FROM autofailover.nodes WHERE formation_id = 'errs';
-- the constraints reject bad rows even when the functions are bypassed
INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port)
    VALUES ('no_such_formation', 0, 'z', '127.0.0.1', 9);
INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port, candidate_priority)
    VALUES ('errs', 0, 'z', '127.0.0.1', 9, 101);
INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port)
    VALUES ('errs', 0, 'z', '127.0.0.1', 1);
INSERT INTO autofailover.nodes (formation_id, group_id, node_name, host, port)
    VALUES ('errs', 0, 'other', 'bad host', 9);

-- node_active
SELECT goal_state FROM autofailover.node_active('errs', -1, 'single', true, 1, '0/1');
SELECT goal_state FROM autofailover.node_active('no_such_formation', 1, 'single', true, 1, '0/1');
SELECT goal_state FROM autofailover.node_active('errs', NULL, 'single', true, 1, '0/1');
SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, NULL, true, 1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1;
SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'no_such_state', true, 1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1;
SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'single', true, 1, 'not an lsn') a WHERE n.formation_id = 'errs' AND n.port = 1;
SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'single', true, -1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1;
SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('errs', n.node_id, 'single', true, 1, '0/1', 'bogus''') a WHERE n.formation_id = 'errs' AND n.port = 1;
-- a node of another formation is unknown here
SELECT a.goal_state FROM autofailover.nodes n,
       autofailover.node_active('default', n.node_id, 'single', true, 1, '0/1') a WHERE n.formation_id = 'errs' AND n.port = 1;
SELECT count(*) AS reports_stored FROM autofailover.nodes WHERE formation_id = 'errs' AND last_report IS NOT NULL;

-- reads
SELECT * FROM autofailover.get_primary('no_such_formation');
SELECT * FROM autofailover.get_nodes('no_such_formation');
SELECT * FROM autofailover.get_other_nodes(-1);
SELECT * FROM autofailover.get_other_nodes(NULL);
SELECT * FROM autofailover.current_state('no_such_formation');
SELECT * FROM autofailover.last_events('errs', -1);
SELECT * FROM autofailover.formation_settings(NULL);
SELECT autofailover.formation_uri('errs', 'bogus');
SELECT autofailover.formation_uri('no_such_formation');
SELECT autofailover.synchronous_standby_names('no_such_formation');

-- operator commands on unknown things
SELECT autofailover.perform_switchover('no_such_formation');
SELECT autofailover.perform_switchover('errs', 7);
SELECT autofailover.perform_failover('errs', NULL);
SELECT autofailover.perform_promotion('errs', 'no_such_node');
SELECT autofailover.perform_promotion('errs', NULL);
SELECT autofailover.start_maintenance('errs', 'no_such_node');
SELECT autofailover.stop_maintenance('no_such_formation', 'x');
SELECT autofailover.set_node_candidate_priority('errs', 'other', 101);
SELECT autofailover.set_node_candidate_priority('errs', 'no_such_node', 10);
SELECT autofailover.set_node_replication_quorum('errs', 'no_such_node', NULL);
SELECT autofailover.set_formation_number_sync_standbys('errs', 99);
SELECT autofailover.remove_node(-1);
SELECT autofailover.remove_node_by_name('errs', 'no_such_node');
SELECT autofailover.drop_formation('errs');

-- cleanup through the API
SELECT autofailover.remove_node_by_name('errs', node_name, force => true)
  FROM autofailover.nodes WHERE formation_id = 'errs' ORDER BY node_id;
SELECT autofailover.drop_formation('errs');
SELECT count(*) AS formations_left FROM autofailover.formations WHERE formation_id = 'errs';
