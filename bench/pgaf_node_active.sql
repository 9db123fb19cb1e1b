-- The same keeper heartbeat as node_active.sql, against pg_auto_failover 2.0's monitor
-- (pgautofailover.node_active): each simulated node reports the goal it was given;
-- node i is in group (i - 1) / 3, one pgsql formation per group ("g<group>").
\set node 1 + :client_id + :clients * (:i % ((:nodes - 1 - :client_id) / :clients + 1))
\set i :i + 1
\set grp (:node - 1) / 3
SELECT assigned_group_state FROM pgautofailover.node_active('g' || :grp, :node, 0,
    (SELECT goalstate FROM pgautofailover.node WHERE nodeid = :node), true, 1, '0/3000000',
    (SELECT CASE WHEN goalstate = 'secondary' THEN 'quorum' ELSE '' END FROM pgautofailover.node WHERE nodeid = :node));
