-- synchronous_standby_names is never cut (security review #12: it was cut at 1023
-- bytes, "..., autofailover_node_78, auto", an invalid value). 60 secondaries
-- need about 1.3 kB; the limit of nodes per group is raised for this session.
\set VERBOSITY terse
SET autofailover.max_nodes_per_group = 61;
SELECT autofailover.create_formation('ssn');

CREATE PROCEDURE ssn_settle() LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR round IN 1..10 LOOP
        FOR n IN SELECT node_id, goal_state FROM autofailover.nodes WHERE formation_id = 'ssn' ORDER BY node_id LOOP
            -- the primary reports every standby streaming, at its own LSN
            PERFORM autofailover.node_active('ssn', n.node_id, n.goal_state, true, 1, '0/3000000',
                                             CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
                                             s.ids, s.lsns)
              FROM (SELECT array_agg(o.node_id) AS ids, array_agg('0/3000000'::pg_lsn) AS lsns
                      FROM autofailover.nodes o
                     WHERE n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
                       AND o.formation_id = 'ssn' AND o.node_id <> n.node_id
                       AND o.goal_state IN ('catchingup', 'secondary')) s;
            COMMIT;
        END LOOP;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM autofailover.nodes
                              WHERE formation_id = 'ssn' AND reported_state <> goal_state);
    END LOOP;
END $$;

SELECT count(*) AS registered
  FROM generate_series(1, 61) i, LATERAL autofailover.register_node('ssn', '127.0.0.1', 20000 + i, 'ssn_' || i) r;
CALL ssn_settle();
SELECT goal_state, count(*) FROM autofailover.nodes WHERE formation_id = 'ssn' GROUP BY 1 ORDER BY 1;

-- The whole list: 60 names, the closing parenthesis, more than the old 1023 bytes.
SELECT length(v) > 1023 AS longer_than_1023, regexp_count(v, 'autofailover_node_[0-9]+') AS names,
       v ~ '^ANY 1 \(autofailover_node_[0-9]+(, autofailover_node_[0-9]+){59}\)$' AS well_formed
  FROM autofailover.synchronous_standby_names('ssn') v;
-- What the primary's keeper gets from node_active is the same value.
SELECT a.synchronous_standby_names = autofailover.synchronous_standby_names('ssn') AS keeper_gets_it_whole
  FROM autofailover.get_primary('ssn') p,
       autofailover.node_active('ssn', p.node_id, 'primary', true, 1, '0/3000000') a;

-- One more node is beyond the limit of this session; without the raised limit, beyond 10.
SELECT node_name FROM autofailover.register_node('ssn', '127.0.0.1', 20100, 'ssn_62');
RESET autofailover.max_nodes_per_group;
SELECT node_name FROM autofailover.register_node('ssn', '127.0.0.1', 20101, 'ssn_63', group_id => 0);
SELECT count(*) AS nodes FROM autofailover.nodes WHERE formation_id = 'ssn';

-- Removing the nodes drops their 61 roles.
CREATE TEMP TABLE ssn_roles AS SELECT keeper_role FROM autofailover.nodes WHERE formation_id = 'ssn';
SELECT count(*) AS removed FROM autofailover.nodes n,
       LATERAL autofailover.remove_node_by_name('ssn', n.node_name, true) r WHERE n.formation_id = 'ssn';
SELECT count(*) AS roles, count(r.rolname) AS roles_left FROM ssn_roles s LEFT JOIN pg_roles r ON r.rolname = s.keeper_role;
SELECT autofailover.drop_formation('ssn');
DROP PROCEDURE ssn_settle();
