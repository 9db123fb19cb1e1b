-- Every SQL attack of the security review (reference/security-review.md,
-- section 1), replayed as each kind of caller: the bootstrap keeper role, a
-- node's own keeper role, an operator and a stranger. Each must be refused with
-- a clear error, or be harmless. docs/security.md explains the rules.
-- (Locks: regress/monitor_locks_test.py; 60 secondaries: sync_names.)
\set VERBOSITY terse
-- h_try() shows the SQLSTATE and the message of a failing statement; node ids
-- and role names (sequence-generated) are masked.
CREATE SCHEMA hostile_test;
GRANT USAGE ON SCHEMA hostile_test TO PUBLIC;
CREATE FUNCTION hostile_test.h_try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM, 'autofailover_keeper_[0-9]+',
                                                             'autofailover_keeper_<id>', 'g'),
                                              'node [0-9]+', 'node <id>', 'g');
END $$;
GRANT EXECUTE ON FUNCTION hostile_test.h_try(text) TO PUBLIC;

SELECT autofailover.create_formation('hostile');
SELECT autofailover.create_formation('hostile_other');
CREATE ROLE hostile_bootstrap LOGIN IN ROLE autofailover_keeper;
CREATE ROLE hostile_operator LOGIN IN ROLE autofailover_operator;
CREATE ROLE hostile_stranger LOGIN;

-- The bootstrap role registers two nodes (and gets each one's own credential);
-- a perfect keeper of each brings them to primary + secondary.
SET SESSION AUTHORIZATION hostile_bootstrap;
SELECT node_id AS n1_id, keeper_role AS n1_role FROM autofailover.register_node('hostile', '10.1.0.1', 5432, 'h_n1') \gset
SELECT node_id AS n2_id, keeper_role AS n2_role FROM autofailover.register_node('hostile', '10.1.0.2', 5432, 'h_n2') \gset
SELECT node_id AS o1_id, keeper_role AS o1_role FROM autofailover.register_node('hostile_other', '10.2.0.1', 5432, 'o_n1') \gset
RESET SESSION AUTHORIZATION;
SELECT :'n1_role' <> :'n2_role' AND :'n2_role' <> :'o1_role' AS one_role_per_node;

SET SESSION AUTHORIZATION :"n1_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n1_id, 'single', true, 1, '0/5000000');
SET SESSION AUTHORIZATION :"n2_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n2_id, 'wait_standby', true, 1, '0/0');
SET SESSION AUTHORIZATION :"n1_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n1_id, 'wait_primary', true, 1, '0/5000000');
SET SESSION AUTHORIZATION :"n2_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n2_id, 'catchingup', true, 1, '0/5000000');
SET SESSION AUTHORIZATION :"n1_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n1_id, 'wait_primary', true, 1, '0/5000000', '',
                                                ARRAY[:n2_id]::bigint[], ARRAY['0/5000000']::pg_lsn[]);
SET SESSION AUTHORIZATION :"n2_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n2_id, 'secondary', true, 1, '0/5000000', 'quorum');
SET SESSION AUTHORIZATION :"n1_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n1_id, 'primary', true, 1, '0/5000000', '',
                                                ARRAY[:n2_id]::bigint[], ARRAY['0/5000000']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT node_name, reported_state, goal_state FROM autofailover.current_state('hostile');

------------------------------------------------------------------------------
-- A. The bootstrap role (review #2): it may register, nothing else.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION hostile_bootstrap;
-- reports for a node, removes one, reads the topology
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.node_active('hostile', %s, 'demoted', true, 2, 'FF/0')$q$, :n1_id));
SELECT hostile_test.h_try(format($q$SELECT autofailover.remove_node(%s, true)$q$, :n1_id));
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.get_nodes('hostile')$q$);
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.get_other_nodes(%s)$q$, :n1_id));
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.get_primary('hostile')$q$);
-- registering an existing node's name or host:port again hands out nothing
SELECT hostile_test.h_try($q$SELECT keeper_password FROM autofailover.register_node('hostile', '10.9.9.9', 5432, 'h_n1')$q$);
SELECT hostile_test.h_try($q$SELECT keeper_password FROM autofailover.register_node('hostile', '10.1.0.1', 5432, 'h_n1_again')$q$);
-- operator API, internals, tables, secrets
SELECT hostile_test.h_try($q$SELECT autofailover.perform_failover('hostile', 0, true)$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.perform_promotion('hostile', 'h_n2')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.create_formation('evil')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.start_maintenance('hostile', 'h_n1')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.set_formation_number_sync_standbys('hostile', 2)$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.current_state('hostile')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.formation_uri('hostile')$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover._decide('hostile', 0, NULL)$q$);
SELECT hostile_test.h_try($q$SELECT autofailover._operator('failover', 'hostile', 0, NULL, true, NULL)$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.run_decision('hostile', 0)$q$);
SELECT hostile_test.h_try($q$SELECT autofailover._lock_group('hostile', 0)$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.nodes$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.formation_secrets$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.groups FOR UPDATE$q$);
SELECT hostile_test.h_try($q$CREATE TABLE public.evil (x int)$q$);
SELECT hostile_test.h_try($q$CREATE SCHEMA evil$q$);
RESET SESSION AUTHORIZATION;

------------------------------------------------------------------------------
-- B. A node's own keeper role (review #2, #3): its own node only.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION :"n2_role";
-- reports for another node, of its formation and of another one
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.node_active('hostile', %s, 'demoted', true, 1, '0/5000000')$q$, :n1_id));
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.node_active('hostile_other', %s, 'single', true, 1, '0/1')$q$, :o1_id));
-- its own id in another formation's name
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.node_active('hostile_other', %s, 'single', true, 1, '0/1')$q$, :n2_id));
-- removes the primary (forced or planned), or forces its own removal
SELECT hostile_test.h_try(format($q$SELECT autofailover.remove_node(%s, true)$q$, :n1_id));
SELECT hostile_test.h_try(format($q$SELECT autofailover.remove_node(%s)$q$, :n1_id));
SELECT hostile_test.h_try(format($q$SELECT autofailover.remove_node(%s, true)$q$, :n2_id));
-- reads another formation's topology; its own formation is fine
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.get_nodes('hostile_other')$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.get_primary('hostile_other')$q$);
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.get_other_nodes(%s)$q$, :o1_id));
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.get_other_nodes(%s)$q$, :n1_id));
SELECT node_name, is_primary FROM autofailover.get_nodes('hostile');
-- registers more nodes, becomes another node, reads secrets, calls the operator API
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.register_node('hostile', '10.1.0.3', 5432, 'h_n3')$q$);
SELECT hostile_test.h_try(format('SET ROLE %I', :'n1_role'));
SELECT hostile_test.h_try($q$SELECT replication_password FROM autofailover.formation_secrets$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.perform_switchover('hostile')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.set_node_candidate_priority('hostile', 'h_n2', 100)$q$);
SELECT hostile_test.h_try($q$UPDATE autofailover.nodes SET goal_state = 'primary'$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover._decide('hostile', 0, NULL)$q$);
-- a temporary table and functions of its own change nothing in the SECURITY DEFINER functions
CREATE TEMP TABLE h_scratch (x int);
CREATE FUNCTION pg_temp.format(text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
CREATE FUNCTION pg_temp.hashtext(text) RETURNS int LANGUAGE sql AS $$ SELECT 42 $$;
SELECT count(*) AS own_formation_nodes FROM autofailover.get_nodes('hostile');
-- spoofed NOTIFY: delivered (PostgreSQL has no privilege for it), a hint only (docs/security.md)
SELECT hostile_test.h_try($q$NOTIFY autofailover_state, '{"formation":"hostile","group":0,"goal":"primary"}'$q$);
DROP FUNCTION pg_temp.format(text, text);
DROP FUNCTION pg_temp.hashtext(text);
DROP TABLE h_scratch;
RESET SESSION AUTHORIZATION;
SELECT node_name, reported_state, goal_state FROM autofailover.current_state('hostile');

------------------------------------------------------------------------------
-- C. A registered node that lies (review #3): it says it caught up, with a
--    made-up LSN; the primary does not see it streaming. It never becomes a
--    secondary, so it never enters synchronous_standby_names.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION hostile_bootstrap;
SELECT node_id AS f_id, keeper_role AS f_role FROM autofailover.register_node('hostile', '10.77.0.1', 5432, 'fake1') \gset
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :"f_role";
SELECT goal_state FROM autofailover.node_active('hostile', :f_id, 'wait_standby', true, 1, '0/0');
-- it reports a list of standbys streaming from it, itself included: it is not the primary, nobody believes it
SELECT goal_state FROM autofailover.node_active('hostile', :f_id, 'catchingup', true, 1, 'FF/0', 'quorum',
                                                ARRAY[:f_id, :n2_id]::bigint[], ARRAY['FF/0', 'FF/0']::pg_lsn[]);
SELECT goal_state FROM autofailover.node_active('hostile', :f_id, 'catchingup', true, 1, 'FF/0');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :"n1_role";
SELECT goal_state FROM autofailover.node_active('hostile', :n1_id, 'primary', true, 1, '0/5000100', '',
                                                ARRAY[:n2_id]::bigint[], ARRAY['0/5000100']::pg_lsn[]);
RESET SESSION AUTHORIZATION;
SELECT node_name, reported_state, goal_state FROM autofailover.current_state('hostile');
SELECT autofailover.synchronous_standby_names('hostile') !~ ('autofailover_node_' || :f_id || '\M') AS fake_not_listed;
SELECT waiting_reason ~ 'fake1 reports it caught up, but the primary h_n1 does not see it streaming' AS reason_names_it
  FROM autofailover.current_state('hostile') WHERE node_name = 'fake1';

------------------------------------------------------------------------------
-- D. Hostile input (review #4, #15): every value is refused with what is expected.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION hostile_bootstrap;
-- hosts that pg_hba.conf would read as more than one host
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'all', 5434, 'evil_all')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'samenet', 5434, 'evil_samenet')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'SameHost', 5434, 'evil_samehost')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '.com', 5434, 'evil_suffix')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '+admins', 5434, 'evil_group')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '@hosts', 5434, 'evil_file')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '0.0.0.0/0', 5434, 'evil_cidr')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '-oProxyCommand=x', 5434, 'evil_dash')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'fe80::1%eth0', 5434, 'evil_zone')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'h ost', 5434, 'evil_space')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'host=evil', 5434, 'evil_kv')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', E'h\nost', 5434, 'evil_newline')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', 'h''ost', 5434, 'evil_quote')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '', 5434, 'evil_empty')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', repeat('h', 256), 5434, 'evil_long')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', NULL, 5434, 'evil_null')$q$);
-- names with bidi overrides, zero-width characters, controls
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, E'ünïcödé\u202Egnp.exe')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, E'zero\u200Bwidth')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, E'next\u0085line')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, E'new\nline')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, repeat('n', 10000))$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, '')$q$);
-- out of range, unknown
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', -1, 'evil_port')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 70000, 'evil_port')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, 'evil_prio', candidate_priority => 101)$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile_other', '10.2.0.9', 5434, 'evil_group', group_id => -5)$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('nosuch', '10.2.0.9', 5434, 'evil_formation')$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node(NULL, '10.2.0.9', 5434, 'evil_formation')$q$);
-- printable but unusual names are fine, stored verbatim
SELECT node_name FROM autofailover.register_node('hostile_other', '10.2.0.10', 5434, 'a''b"c, d\e');
SELECT length(node_name) FROM autofailover.register_node('hostile_other', 'db-1.example.com', 5434, repeat('é', 63));
RESET SESSION AUTHORIZATION;
SELECT node_name, host FROM autofailover.nodes WHERE formation_id = 'hostile_other' ORDER BY node_name;

------------------------------------------------------------------------------
-- E. Registration by the dozen (review #7): the group's limit is 10 nodes.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION hostile_bootstrap;
SELECT count(*) AS registered
  FROM generate_series(1, 7) i, LATERAL autofailover.register_node('hostile', '10.77.1.' || i, 5432, 'flood' || i) r;
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile', '10.77.1.99', 5432, 'flood99')$q$);
RESET SESSION AUTHORIZATION;
SELECT count(*) AS nodes_in_group FROM autofailover.nodes WHERE formation_id = 'hostile' AND group_id = 0;

------------------------------------------------------------------------------
-- F. A stranger: no grant at all.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION hostile_stranger;
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.register_node('hostile', '10.3.0.1', 5432, 'stranger')$q$);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.get_primary('hostile')$q$);
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.node_active('hostile', %s, 'demoted', true, 1, '0/1')$q$, :n1_id));
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.nodes$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.formations FOR SHARE$q$);
-- the old lock keys: anybody may take them, and they lock nothing the monitor uses now
SELECT pg_advisory_lock(hashtext('autofailover:hostile')::bigint) IS NOT NULL AS took_old_key;
SELECT pg_advisory_unlock(hashtext('autofailover:hostile')::bigint);
RESET SESSION AUTHORIZATION;

------------------------------------------------------------------------------
-- G. An operator: everything, for any node, with its arguments checked.
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION hostile_operator;
SELECT hostile_test.h_try($q$SELECT autofailover.create_formation(repeat('a', 64))$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.create_formation('1abc')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.create_formation('evil', 'db name')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.create_formation('evil', E'db\nname')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.formation_uri('hostile', 'require&host=evil')$q$);
SELECT hostile_test.h_try($q$SELECT autofailover.set_node_candidate_priority('hostile', 'h_n2', NULL)$q$);
SELECT count(*) <= 2147483647 AS events_ok FROM autofailover.last_events('hostile', 2147483647);
SELECT hostile_test.h_try($q$SELECT * FROM autofailover.formation_secrets$q$);
SELECT hostile_test.h_try($q$SELECT 1 FROM autofailover.nodes FOR UPDATE$q$);
SELECT hostile_test.h_try($q$SELECT autofailover._decide('hostile', 0, NULL)$q$);
-- an operator may act for any node, and force a removal
SELECT hostile_test.h_try(format($q$SELECT goal_state FROM autofailover.node_active('hostile_other', %s, 'single', true, 1, '0/1')$q$, :o1_id));
SELECT autofailover.remove_node_by_name('hostile', 'fake1', force => true);
RESET SESSION AUTHORIZATION;
-- the fake node's role went with it: that credential is dead
SELECT count(*) AS fake_role_left FROM pg_roles WHERE rolname = :'f_role';

------------------------------------------------------------------------------
-- H. A removed node's keeper confirms its removal: its role stops working at
--    once (it cannot be dropped from its own session) and is dropped next time.
------------------------------------------------------------------------------
SELECT autofailover.create_formation('hostile_drop');
SET SESSION AUTHORIZATION hostile_bootstrap;
SELECT node_id AS d_id, keeper_role AS d_role FROM autofailover.register_node('hostile_drop', '10.4.0.1', 5432, 'd_n1') \gset
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :"d_role";
SELECT goal_state FROM autofailover.node_active('hostile_drop', :d_id, 'single', true, 1, '0/1');
RESET SESSION AUTHORIZATION;
SELECT autofailover.remove_node_by_name('hostile_drop', 'd_n1');
SET SESSION AUTHORIZATION :"d_role";
SELECT goal_state FROM autofailover.node_active('hostile_drop', :d_id, 'dropped', false, 1, '0/1');
SELECT hostile_test.h_try(format($q$SELECT * FROM autofailover.node_active('hostile_drop', %s, 'single', true, 1, '0/1')$q$, :d_id));
RESET SESSION AUTHORIZATION;
SELECT rolcanlogin, pg_has_role(rolname, 'autofailover_node_keepers', 'MEMBER') AS still_member
  FROM pg_roles WHERE rolname = :'d_role';
SELECT count(*) AS retired FROM autofailover.retired_roles WHERE rolname = :'d_role';
SELECT autofailover.remove_node_by_name('hostile', 'flood1', force => true);
SELECT count(*) AS d_role_left FROM pg_roles WHERE rolname = :'d_role';
SELECT autofailover.drop_formation('hostile_drop');

-- clean up
SELECT count(*) >= 0 AS removed FROM autofailover.nodes n,
       LATERAL autofailover.remove_node_by_name(n.formation_id, n.node_name, true) r
 WHERE n.formation_id IN ('hostile', 'hostile_other');
SELECT autofailover.drop_formation('hostile');
SELECT autofailover.drop_formation('hostile_other');
DROP ROLE hostile_bootstrap, hostile_operator, hostile_stranger;
DROP SCHEMA hostile_test CASCADE;
