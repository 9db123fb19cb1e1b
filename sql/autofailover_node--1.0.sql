-- autofailover_node 1.0: the write lease of a data node (docs/write-lease.md).
-- The keeper renews it while the monitor or a standby confirms this node is the
-- primary; once it has expired while its keeper still exists (frozen, hung,
-- cut off), Postgres itself refuses write transactions.
\echo Use "CREATE EXTENSION autofailover_node" to load this file. \quit

-- deadline_ns: on lease_clock(), after which writes are refused (NULL: never).
-- keeper_pid: the process whose existence keeps the lease enforced once expired.
CREATE FUNCTION autofailover_node.renew_lease(deadline_ns bigint, keeper_pid integer)
RETURNS void LANGUAGE C CALLED ON NULL INPUT VOLATILE AS 'MODULE_PATHNAME', 'autofailover_node_renew_lease';

-- CLOCK_BOOTTIME in nanoseconds: keeps running while processes are stopped
-- (SIGSTOP) and while the machine is suspended, and is the same for every
-- process of the host.
CREATE FUNCTION autofailover_node.lease_clock()
RETURNS bigint LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'autofailover_node_lease_clock';

CREATE FUNCTION autofailover_node.lease(
    OUT granted boolean, OUT expires_in_ms bigint, OUT keeper_pid integer, OUT keeper_alive boolean,
    OUT blocks_writes boolean)
RETURNS record LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'autofailover_node_lease';

REVOKE ALL ON FUNCTION autofailover_node.renew_lease(bigint, integer) FROM PUBLIC;
-- Monitoring roles may look at the lease, never renew it.
GRANT USAGE ON SCHEMA autofailover_node TO pg_monitor;
GRANT EXECUTE ON FUNCTION autofailover_node.lease() TO pg_monitor;
GRANT EXECUTE ON FUNCTION autofailover_node.lease_clock() TO pg_monitor;
