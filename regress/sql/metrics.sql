-- autofailover.metrics(): the Prometheus samples of a 2-node group through a
-- switchover and a failover. Values that depend on timing are checked by
-- range, never printed.
\set VERBOSITY terse
SELECT autofailover.create_formation('mx', number_sync_standbys => 0);
CREATE TABLE mx_lsn (node_name text PRIMARY KEY, lsn pg_lsn NOT NULL);
INSERT INTO mx_lsn VALUES ('mx_a', '0/5000000'), ('mx_b', '0/4000000');

CREATE PROCEDURE mx_step(silent text[] DEFAULT '{}') LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR n IN SELECT s.node_id, s.node_name, s.goal_state FROM autofailover.current_state('mx') s
              WHERE s.node_name <> ALL (silent) ORDER BY s.node_id LOOP
        PERFORM autofailover.node_active('mx', n.node_id, n.goal_state,
                                         n.goal_state NOT IN ('demoted', 'maintenance', 'dropped'), 1,
                                         (SELECT l.lsn FROM mx_lsn l WHERE l.node_name = n.node_name),
                                         CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                         s.ids, s.lsns)
          FROM (SELECT array_agg(o.node_id ORDER BY o.node_id) AS ids, array_agg(l.lsn ORDER BY o.node_id) AS lsns
                  FROM autofailover.current_state('mx') o JOIN mx_lsn l ON l.node_name = o.node_name
                 WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                   AND o.node_id <> n.node_id AND o.goal_state IN ('catchingup', 'secondary')
                   AND o.node_name <> ALL (silent)) s;
        COMMIT;
    END LOOP;
END $$;

CREATE PROCEDURE mx_settle(silent text[] DEFAULT '{}') LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..30 LOOP
        CALL mx_step(silent);
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.current_state('mx') s
                              WHERE s.reported_state <> s.goal_state AND s.node_name <> ALL (silent));
    END LOOP;
END $$;

-- per-node and per-group samples, without the values that depend on timing
CREATE VIEW mx_samples AS
    SELECT name, regexp_replace(labels, 'node_id="[0-9]+"', 'node_id="N"') AS labels, value
      FROM autofailover.metrics('mx')
     WHERE name NOT IN ('autofailover_node_last_report_age_seconds', 'autofailover_node_probe_up',
                        'autofailover_node_probe_duration_seconds', 'autofailover_node_last_probe_age_seconds',
                        'autofailover_decisions_total', 'autofailover_decision_seconds_total',
                        'autofailover_last_decision_seconds', 'autofailover_probes_total')
     ORDER BY name, labels;

SELECT node_name FROM autofailover.register_node('mx', '127.0.0.1', 71, 'mx_a');
CALL mx_settle();
SELECT node_name FROM autofailover.register_node('mx', '127.0.0.1', 72, 'mx "b"');
UPDATE mx_lsn SET node_name = 'mx "b"' WHERE node_name = 'mx_b';
CALL mx_settle();
SELECT * FROM mx_samples;

-- every sample has a Prometheus name, a type, a help text; counters end in _total
SELECT count(*) AS badly_named FROM autofailover.metrics()
 WHERE name !~ '^autofailover_[a-z_]+$' OR type NOT IN ('gauge', 'counter') OR help = ''
    OR (type = 'counter') <> (name ~ '_total$');
-- one type and one help per metric name (the text format wants them once)
SELECT name FROM autofailover.metrics() GROUP BY name HAVING count(DISTINCT type) > 1 OR count(DISTINCT help) > 1;
-- keepers just reported; decisions were taken and timed
SELECT bool_and(value >= 0 AND value < 60) AS report_ages_ok FROM autofailover.metrics('mx')
 WHERE name = 'autofailover_node_last_report_age_seconds';
SELECT value > 0 AS decisions_counted FROM autofailover.metrics() WHERE name = 'autofailover_decisions_total';
SELECT value > 0 AS decision_time_counted FROM autofailover.metrics()
 WHERE name = 'autofailover_decision_seconds_total';

-- dry-run (plan_operation): who would be promoted, nothing written
SELECT count(*) AS events_before FROM autofailover.events WHERE formation_id = 'mx' \gset
SELECT node_name, reported_state, planned_goal_state, is_primary, lsn_behind_primary, would_be_promoted,
       waiting_reason
  FROM autofailover.plan_operation('switchover', 'mx');
SELECT node_name, planned_goal_state, would_be_promoted
  FROM autofailover.plan_operation('promotion', 'mx', node => 'mx "b"');
-- refused plans are the command's own errors
SELECT * FROM autofailover.plan_operation('promotion', 'mx', node => 'mx_a');
SELECT count(*) = :events_before AS nothing_written FROM autofailover.events WHERE formation_id = 'mx';
SELECT node_name, reported_state, goal_state FROM autofailover.current_state('mx') ORDER BY node_name;
SELECT * FROM autofailover.plan_operation('restart', 'mx');
SELECT * FROM autofailover.plan_operation('promotion', 'mx');

-- a switchover is counted once (the candidate receives the primary's WAL as it drains)
SELECT autofailover.perform_switchover('mx');
UPDATE mx_lsn SET lsn = '0/5000000';
CALL mx_settle();
SELECT labels, value FROM mx_samples
 WHERE name IN ('autofailover_switchovers_total', 'autofailover_failovers_total', 'autofailover_node_is_primary');

-- a failover: the primary goes silent and its port is closed; the worker's probes fail
DO $$
DECLARE
    v_primary text := (SELECT node_name FROM autofailover.get_primary('mx'));
BEGIN
    FOR i IN 1..100 LOOP
        CALL mx_step(ARRAY[v_primary]);
        EXIT WHEN EXISTS (SELECT 1 FROM autofailover.metrics('mx')
                           WHERE name = 'autofailover_failovers_total' AND value > 0);
        PERFORM pg_sleep(0.2);
    END LOOP;
END $$;
SELECT name, value FROM mx_samples
 WHERE name IN ('autofailover_switchovers_total', 'autofailover_failovers_total');
-- the probes of the closed ports were stored, with their durations
SELECT value > 0 AS probes_down_counted FROM autofailover.metrics()
 WHERE name = 'autofailover_probes_total' AND labels = '{result="down"}';
SELECT count(*) AS probe_results, bool_and(value = 0) AS all_down FROM autofailover.metrics('mx')
 WHERE name = 'autofailover_node_probe_up';
SELECT bool_and(value >= 0 AND value < 10) AS probe_durations_ok FROM autofailover.metrics('mx')
 WHERE name = 'autofailover_node_probe_duration_seconds';

-- unknown formation; PUBLIC may not call it
SELECT * FROM autofailover.metrics('no_such_formation');
CREATE ROLE mx_nobody;
SET ROLE mx_nobody;
SELECT * FROM autofailover.metrics();
RESET ROLE;
DROP ROLE mx_nobody;
