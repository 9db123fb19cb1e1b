-- autofailover_node: the write lease of a data node (docs/write-lease.md). The
-- keeper renews it; here the "keeper" is a process we know to be alive (the
-- checkpointer) or this session itself.
\set VERBOSITY terse
CREATE EXTENSION autofailover_node;
CREATE TABLE lease_probe (i int);

-- No lease since Postgres started: nothing is enforced.
SELECT granted, expires_in_ms, keeper_pid, keeper_alive, blocks_writes FROM autofailover_node.lease();
INSERT INTO lease_probe VALUES (1);

SELECT pid AS holder FROM pg_stat_activity WHERE backend_type = 'checkpointer' \gset

-- A live lease: writes go on.
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() + 60000000000, :holder);
SELECT granted, expires_in_ms > 50000 AS far, keeper_alive, blocks_writes FROM autofailover_node.lease();
INSERT INTO lease_probe VALUES (2);

-- Expired while its holder still runs: statements run read-only ...
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() - 1, :holder);
SELECT granted, expires_in_ms <= 0 AS expired, keeper_alive, blocks_writes FROM autofailover_node.lease();
INSERT INTO lease_probe VALUES (3);
CREATE TABLE lease_not_created (i int);
SHOW transaction_read_only;

-- ... and new sessions are read-only from the start (libpq's read-write check skips them).
\c
\set VERBOSITY terse
SHOW default_transaction_read_only;
INSERT INTO lease_probe VALUES (4);
SELECT :holder AS holder \gset
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() + 60000000000, :holder);
-- That session stays read-only for its whole life; the next one is writable.
INSERT INTO lease_probe VALUES (5);
\c
\set VERBOSITY terse
SELECT pid AS holder FROM pg_stat_activity WHERE backend_type = 'checkpointer' \gset
SHOW default_transaction_read_only;
INSERT INTO lease_probe VALUES (6);

-- A transaction that wrote in time does not commit once the lease has expired.
BEGIN;
INSERT INTO lease_probe VALUES (7);
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() - 1, :holder);
COMMIT;
SELECT autofailover_node.renew_lease(NULL, :holder);
SELECT granted, expires_in_ms, blocks_writes FROM autofailover_node.lease();
SELECT i FROM lease_probe ORDER BY i;

-- A holder that has exited enforces nothing: a killed keeper leaves its primary writable.
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() - 1, pg_backend_pid());
\c
\set VERBOSITY terse
DO $$ BEGIN
  WHILE (SELECT keeper_alive FROM autofailover_node.lease()) LOOP PERFORM pg_sleep(0.01); END LOOP;
END $$;
SELECT granted, keeper_alive, blocks_writes FROM autofailover_node.lease();
-- (this session was born while the holder still ran: read-only; the next one is not)
\c
\set VERBOSITY terse
INSERT INTO lease_probe VALUES (8);
SELECT count(*) FROM lease_probe;

-- A walsender with a database (replication=database) runs SQL like a client session: the same rules apply.
CREATE SEQUENCE lease_seq;
SELECT pid AS holder FROM pg_stat_activity WHERE backend_type = 'checkpointer' \gset
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() + 60000000000, :holder);
\c -reuse-previous=on "replication=database"
\set VERBOSITY terse
SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid();
INSERT INTO lease_probe VALUES (30);
BEGIN;
INSERT INTO lease_probe VALUES (31);
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() - 1, :holder);
COMMIT;
BEGIN;
SET TRANSACTION READ WRITE;
INSERT INTO lease_probe VALUES (32);
COMMIT;
SELECT nextval('lease_seq');
-- (opened after the deadline: read-only from the start)
\c -reuse-previous=on "replication=database"
\set VERBOSITY terse
SHOW default_transaction_read_only;
BEGIN;
SET TRANSACTION READ WRITE;
INSERT INTO lease_probe VALUES (33);
COMMIT;
SELECT autofailover_node.renew_lease(NULL, :holder);
\c
\set VERBOSITY terse
SELECT i FROM lease_probe WHERE i >= 30 ORDER BY i;

-- Two-phase commit: a transaction prepared in time is neither committed nor rolled back after the
-- deadline, from any session; it stays prepared until the keeper renews the lease.
BEGIN;
INSERT INTO lease_probe VALUES (40);
PREPARE TRANSACTION 'regress_lease_prepared';
SELECT autofailover_node.renew_lease(autofailover_node.lease_clock() - 1, :holder);
COMMIT PREPARED 'regress_lease_prepared';
ROLLBACK PREPARED 'regress_lease_prepared';
\c -reuse-previous=on "replication=database"
\set VERBOSITY terse
COMMIT PREPARED 'regress_lease_prepared';
SELECT gid FROM pg_prepared_xacts;
SELECT autofailover_node.renew_lease(NULL, :holder);
COMMIT PREPARED 'regress_lease_prepared';
\c
\set VERBOSITY terse
SELECT i FROM lease_probe WHERE i >= 30 ORDER BY i;
DROP SEQUENCE lease_seq;

-- Bad input, and only superusers renew.
SELECT autofailover_node.renew_lease(0, NULL);
SELECT autofailover_node.renew_lease(NULL, -5);
CREATE ROLE regress_lease_user;
SET ROLE regress_lease_user;
SELECT autofailover_node.renew_lease(NULL, NULL);
RESET ROLE;
GRANT pg_monitor TO regress_lease_user;
SET ROLE regress_lease_user;
SELECT blocks_writes FROM autofailover_node.lease();
SELECT autofailover_node.renew_lease(NULL, NULL);
RESET ROLE;
DROP ROLE regress_lease_user;
DROP TABLE lease_probe;
DROP EXTENSION autofailover_node;
