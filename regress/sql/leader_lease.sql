-- The monitor's leader lease (docs/monitor-ha.md): with replicated monitors the
-- agent renews it after every etcd keepalive; once it has run out the monitor
-- records heartbeats but decides nothing, refuses registrations and operator
-- commands, and refuses to commit a decision taken while it was still valid.
\set VERBOSITY terse
SELECT autofailover.create_formation('ll');

CREATE VIEW ll_state AS
    SELECT node_name, reported_state, goal_state FROM autofailover.current_state('ll') ORDER BY node_name;

-- 1. Not required (the default): a single monitor decides as before.
SELECT required, granted, valid, expires_in_ms, leader_since FROM autofailover.leader_lease();
SELECT node_name, goal_state FROM autofailover.register_node('ll', '127.0.0.1', 61, 'll_a');
SELECT node_id AS ll_a FROM autofailover.current_state('ll') WHERE node_name = 'll_a' \gset

-- 2. Required for the whole instance (the health worker too), never granted.
ALTER SYSTEM SET autofailover.require_leader_lease = on;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW autofailover.require_leader_lease;
SELECT required, granted, valid, expires_in_ms, leader_since FROM autofailover.leader_lease();
-- registration and operator commands are refused ...
SELECT node_name FROM autofailover.register_node('ll', '127.0.0.1', 62, 'll_b');
SELECT autofailover.start_maintenance('ll', 'll_a');
-- ... a heartbeat is recorded and answered with the stored goal, nothing decided
SELECT goal_state FROM autofailover.node_active('ll', :ll_a, 'single', true, 1, '0/3000000');
SELECT * FROM ll_state;
SELECT keeper_last_report > now() - interval '1 minute' AS heartbeat_recorded
  FROM autofailover.current_state('ll') WHERE node_name = 'll_a';

-- 3. A lease runs out by itself (300 ms, then 400 ms later); registration is refused again.
SELECT autofailover.renew_leader_lease(300);
SELECT required, granted, valid, leader_since IS NOT NULL AS leads FROM autofailover.leader_lease();
SELECT pg_sleep(0.4);
SELECT granted, valid, expires_in_ms < 0 AS past FROM autofailover.leader_lease();
SELECT node_name FROM autofailover.register_node('ll', '127.0.0.1', 62, 'll_b');

-- 4. Granted: decisions as before.
SELECT autofailover.renew_leader_lease(60000);
SELECT valid, expires_in_ms > 50000 AS far FROM autofailover.leader_lease();
SELECT node_name, goal_state FROM autofailover.register_node('ll', '127.0.0.1', 62, 'll_b');

-- 5. Fenced while the standby joins: its reports (and the health worker) change no goal.
SELECT autofailover.renew_leader_lease(0);
CREATE TABLE ll_before AS SELECT node_name, goal_state FROM autofailover.current_state('ll');
CALL keepers_step('ll');
CALL keepers_step('ll');
CALL keepers_step('ll');
SELECT pg_sleep(0.5);
SELECT count(*) AS goals_unchanged FROM autofailover.current_state('ll') s JOIN ll_before b USING (node_name, goal_state);
SELECT count(*) AS reports_recorded FROM autofailover.current_state('ll') s WHERE s.reported_state = s.goal_state;
SELECT autofailover.perform_switchover('ll');

-- 6. Renewed from a clock value in the past (the agent's keepalive send time):
--    decisions resume and the group settles.
SELECT autofailover.renew_leader_lease(60000, autofailover.leader_lease_clock() - 1000000000);
SELECT valid, expires_in_ms BETWEEN 50000 AND 59000 AS counted_from_send FROM autofailover.leader_lease();
DO $$
BEGIN
    FOR i IN 1..30 LOOP
        CALL keepers_step('ll');
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.current_state('ll') s
                              WHERE s.reported_state <> s.goal_state OR s.goal_state NOT IN ('primary', 'secondary'));
    END LOOP;
END $$;
SELECT * FROM ll_state;

-- 7. A decision taken while valid does not commit after the lease ran out.
SELECT autofailover.start_maintenance('ll', 'll_b');
SELECT goal_state FROM ll_state WHERE node_name = 'll_b';
BEGIN;
SELECT autofailover.stop_maintenance('ll', 'll_b');
SELECT autofailover.renew_leader_lease(0);   -- fenced at once (what the agent does on release)
COMMIT;
SELECT goal_state FROM ll_state WHERE node_name = 'll_b';
SELECT granted, valid, leader_since IS NULL AS no_leader FROM autofailover.leader_lease();

-- 8. Bad input; only superusers renew (the operator role may read the lease).
SELECT autofailover.renew_leader_lease(NULL);
SELECT autofailover.renew_leader_lease(1000, autofailover.leader_lease_clock() + 10000000000);
SET ROLE autofailover_operator;
SELECT autofailover.renew_leader_lease(1000);
SELECT required, valid FROM autofailover.leader_lease();
RESET ROLE;
SET ROLE autofailover_keeper;
SELECT required FROM autofailover.leader_lease();
RESET ROLE;

-- Back to a single monitor: not required, decisions without a lease.
ALTER SYSTEM RESET autofailover.require_leader_lease;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT autofailover.stop_maintenance('ll', 'll_b');
SELECT autofailover.remove_node_by_name('ll', 'll_b', true);
SELECT autofailover.remove_node_by_name('ll', 'll_a', true);
DROP TABLE ll_before;
