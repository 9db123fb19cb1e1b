-- One keeper heartbeat. Each client walks its own nodes round-robin (client c owns
-- nodes c+1, c+1+clients, ...; :i counts this client's calls), as one keeper session
-- per node does: the monitor refuses a report from an older session of a node than
-- the last one (stale report). At --rate N each of the N simulated nodes reports
-- about once per second; each reports the goal the monitor gave it as reached, and a
-- primary its group's two other nodes (groups of 3: ids 3g+1..3g+3) streaming at its LSN.
\set node 1 + :client_id + :clients * (:i % ((:nodes - 1 - :client_id) / :clients + 1))
\set i :i + 1
\set first 1 + 3 * ((:node - 1) / 3)
\set a CASE WHEN :node = :first THEN :first + 1 ELSE :first END
\set b CASE WHEN :node = :first + 2 THEN :first + 1 ELSE :first + 2 END
SELECT a.goal_state FROM autofailover.nodes n, autofailover.node_active('bench', :node, n.goal_state, true, 1,
    '0/3000000', CASE WHEN n.goal_state = 'secondary' THEN 'quorum' ELSE '' END,
    CASE WHEN n.goal_state IN ('primary', 'wait_primary', 'apply_settings') THEN ARRAY[:a::bigint, :b::bigint] END,
    CASE WHEN n.goal_state IN ('primary', 'wait_primary', 'apply_settings') THEN '{0/3000000,0/3000000}'::pg_lsn[] END) a
 WHERE n.node_id = :node;
