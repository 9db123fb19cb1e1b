-- One keeper heartbeat: a random simulated node reports the goal the monitor
-- gave it as reached (a perfect keeper), like autofailover-keeper does each period.
\set node random(1, :nodes)
SELECT goal_state FROM autofailover.node_active('bench', :node,
    (SELECT goal_state FROM autofailover.nodes WHERE node_id = :node), true, 1, '0/3000000',
    (SELECT CASE WHEN goal_state = 'secondary' THEN 'quorum' ELSE '' END FROM autofailover.nodes WHERE node_id = :node));
