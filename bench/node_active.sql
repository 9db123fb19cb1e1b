-- One keeper heartbeat. Clients walk the nodes round-robin (:i counts this
-- client's calls), so at --rate N each of the N simulated nodes reports once
-- per second, as autofailover-keeper does; each reports the goal the monitor
-- gave it as reached (a perfect keeper).
\set node 1 + (:client_id + :i * :clients) % :nodes
\set i :i + 1
SELECT goal_state FROM autofailover.node_active('bench', :node,
    (SELECT goal_state FROM autofailover.nodes WHERE node_id = :node), true, 1, '0/3000000',
    (SELECT CASE WHEN goal_state = 'secondary' THEN 'quorum' ELSE '' END FROM autofailover.nodes WHERE node_id = :node));
