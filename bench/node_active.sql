-- One keeper heartbeat. Each client walks its own nodes round-robin (client c owns
-- nodes c+1, c+1+clients, ...; :i counts this client's calls), as one keeper session
-- per node does: the monitor refuses a report from an older session of a node than
-- the last one (stale report). At --rate N each of the N simulated nodes reports
-- about once per second; each reports the goal the monitor gave it as reached.
\set node 1 + :client_id + :clients * (:i % ((:nodes - 1 - :client_id) / :clients + 1))
\set i :i + 1
SELECT goal_state FROM autofailover.node_active('bench', :node,
    (SELECT goal_state FROM autofailover.nodes WHERE node_id = :node), true, 1, '0/3000000',
    (SELECT CASE WHEN goal_state = 'secondary' THEN 'quorum' ELSE '' END FROM autofailover.nodes WHERE node_id = :node));
