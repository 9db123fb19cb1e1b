-- autofailover 1.0: the monitor's schema and SQL API (docs/api.md).
-- Decisions are taken by the pure core (libautofailover) through the C
-- functions autofailover._*; this script validates input, takes the decision
-- locks in the one documented order, and keeps the tables.
-- One parameter style per layer. Public functions: the parameter names are part of
-- the API (named notation, `node => ...`), so they carry no prefix, and the bodies
-- refer to them as $1, $2... because a bare `formation` or `node_id` would be
-- ambiguous with the columns of the same name. Internal PL/pgSQL functions that read
-- tables (autofailover._*): p_-prefixed names, used by name. C functions take their
-- arguments by position. The hot path (node_active) and the locks are C.
\echo Use "CREATE EXTENSION autofailover" to load this file. \quit

-- Labels exactly libautofailover's to_string(NodeState), in the same order
-- (regress test enum_matches_core compares them).
CREATE TYPE autofailover.node_state AS ENUM (
    'init', 'single', 'wait_primary', 'primary', 'join_primary', 'apply_settings', 'draining',
    'demote_timeout', 'demoted', 'wait_standby', 'catchingup', 'secondary', 'prepare_promotion',
    'stop_replication', 'report_lsn', 'fast_forward', 'join_secondary', 'maintenance',
    'prepare_maintenance', 'wait_maintenance', 'dropped');

-- Host and node name validation, one implementation shared with the keeper
-- (libautofailover/input_validation.cpp): why a value is refused, '' when it is not.
CREATE FUNCTION autofailover._host_problem(host text) RETURNS text
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'autofailover_host_problem';
CREATE FUNCTION autofailover._node_name_problem(name text) RETURNS text
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'autofailover_node_name_problem';

CREATE TABLE autofailover.formations (
    formation_id text PRIMARY KEY
        CHECK (formation_id ~ '^[A-Za-z_][A-Za-z0-9_-]*$' AND length(formation_id) <= 63),
    dbname text NOT NULL DEFAULT 'postgres'
        CHECK (dbname ~ '^[A-Za-z0-9_.-]+$' AND length(dbname) <= 63),
    number_sync_standbys int NOT NULL DEFAULT 0 CHECK (number_sync_standbys BETWEEN 0 AND 16)
);

CREATE TABLE autofailover.groups (
    formation_id text NOT NULL REFERENCES autofailover.formations ON DELETE CASCADE,
    group_id int NOT NULL CHECK (group_id >= 0),
    waiting_reason text NOT NULL DEFAULT '',
    -- Standbys were adopted by this (new) monitor before the group's primary: no
    -- election until then (adopt_node, docs/monitor-ha.md M6). NULL otherwise.
    adoption_deadline timestamptz,
    PRIMARY KEY (formation_id, group_id)
);

CREATE TABLE autofailover.nodes (
    node_id bigserial PRIMARY KEY,
    formation_id text NOT NULL,
    group_id int NOT NULL,
    -- host and node_name are validated by the trigger nodes_names_valid (below).
    node_name text NOT NULL,
    host text NOT NULL,
    port int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    system_identifier bigint,
    reported_state autofailover.node_state NOT NULL DEFAULT 'init',
    goal_state autofailover.node_state NOT NULL DEFAULT 'init',
    goal_assigned_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_report timestamptz,
    pg_is_running bool NOT NULL DEFAULT false,
    timeline int NOT NULL DEFAULT 0 CHECK (timeline >= 0),
    lsn pg_lsn NOT NULL DEFAULT '0/0',
    sync_state text NOT NULL DEFAULT '' CHECK (sync_state IN ('', 'sync', 'quorum', 'async', 'potential')),
    -- What this node's keeper saw in pg_stat_replication at its last report (node ids of
    -- the standbys streaming from it, and their flush LSNs). While it is the primary this
    -- is the only evidence of streaming the core trusts (docs/security.md).
    streaming_standbys bigint[] NOT NULL DEFAULT '{}',
    streaming_flush_lsns pg_lsn[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(streaming_flush_lsns) = cardinality(streaming_standbys)),
    candidate_priority int NOT NULL DEFAULT 50 CHECK (candidate_priority BETWEEN 0 AND 100),
    replication_quorum bool NOT NULL DEFAULT true,
    -- The LOGIN role this node's keeper uses (docs/security.md, "Keeper identity").
    keeper_role text UNIQUE,
    -- backend_start of the session that stored the last report: a report from an older
    -- session of the keeper (one it gave up on, served late) is refused, see monitor_ext/node_active.cpp.
    report_session timestamptz,
    FOREIGN KEY (formation_id, group_id) REFERENCES autofailover.groups,
    UNIQUE (formation_id, node_name),
    UNIQUE (formation_id, host, port)
);
CREATE INDEX nodes_group_idx ON autofailover.nodes (formation_id, group_id);

-- Written only by the health-check worker, so its once-per-round bulk update
-- never waits on the node rows keepers update under their group lock.
CREATE TABLE autofailover.node_health (
    node_id bigint PRIMARY KEY REFERENCES autofailover.nodes ON DELETE CASCADE,
    health text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'bad', 'good')),
    last_health_check timestamptz
);

CREATE TABLE autofailover.events (
    event_id bigserial PRIMARY KEY,
    event_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    formation_id text NOT NULL,
    node_id bigint,
    node_name text,
    group_id int,
    reported_state autofailover.node_state,
    goal_state autofailover.node_state,
    description text NOT NULL
);
-- The host and name checks of nodes. A CHECK constraint is evaluated on every
-- UPDATE, and every keeper heartbeat updates its node's row (10,000 a second on a
-- large monitor, docs/benchmarks.md): this trigger runs only when host or node_name
-- is written, and fails the way the constraints it replaces did.
CREATE FUNCTION autofailover._nodes_names_valid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF autofailover._host_problem(NEW.host) <> '' THEN
        RAISE EXCEPTION 'new row for relation "nodes" violates check constraint "nodes_host_check"'
            USING ERRCODE = 'check_violation', SCHEMA = 'autofailover', TABLE = 'nodes',
                  CONSTRAINT = 'nodes_host_check';
    END IF;
    IF autofailover._node_name_problem(NEW.node_name) <> '' THEN
        RAISE EXCEPTION 'new row for relation "nodes" violates check constraint "nodes_node_name_check"'
            USING ERRCODE = 'check_violation', SCHEMA = 'autofailover', TABLE = 'nodes',
                  CONSTRAINT = 'nodes_node_name_check';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER nodes_names_valid BEFORE INSERT OR UPDATE OF host, node_name ON autofailover.nodes
    FOR EACH ROW EXECUTE FUNCTION autofailover._nodes_names_valid();

CREATE INDEX events_formation_idx ON autofailover.events (formation_id, event_id);

INSERT INTO autofailover.formations (formation_id) VALUES ('default');

SELECT pg_catalog.pg_extension_config_dump('autofailover.formations', '');
SELECT pg_catalog.pg_extension_config_dump('autofailover.groups', '');
SELECT pg_catalog.pg_extension_config_dump('autofailover.nodes', '');
SELECT pg_catalog.pg_extension_config_dump('autofailover.nodes_node_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('autofailover.events', '');
SELECT pg_catalog.pg_extension_config_dump('autofailover.events_event_id_seq', '');

------------------------------------------------------------------------------
-- C functions (monitor_ext/): the pure core behind SPI load/store.
------------------------------------------------------------------------------
-- Heartbeats of steady groups, answered from shared memory (monitor_ext/steady_answers.h):
-- the node's latest heartbeat there, NULL when none (then the table's columns are the latest).
CREATE FUNCTION autofailover._heartbeat_at(node_id bigint) RETURNS timestamptz
    LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'autofailover_heartbeat_at';
CREATE FUNCTION autofailover._heartbeat_lsn(node_id bigint) RETURNS pg_lsn
    LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'autofailover_heartbeat_lsn';
-- How many nodes have a cached answer now, and how many heartbeats were answered from it.
CREATE FUNCTION autofailover._steady_answer_counts(OUT nodes_with_answer bigint, OUT answers_from_cache bigint)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_steady_answer_counts';
CREATE FUNCTION autofailover._steady_answers_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'autofailover_steady_answers_invalidate';

CREATE FUNCTION autofailover._decide(formation text, group_id int, node_id bigint,
    OUT goal_state text, OUT candidate_priority int, OUT replication_quorum bool,
    OUT primary_node_id bigint, OUT primary_host text, OUT primary_port int,
    OUT synchronous_standby_names text, OUT upstream_host text, OUT upstream_port int,
    OUT upstream_lsn pg_lsn, OUT waiting_reason text, OUT network_partition_timeout_ms int,
    OUT goal_changes int)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_decide';

CREATE FUNCTION autofailover._register_assign(formation text, group_id int, node_id bigint, candidate_priority int)
    RETURNS text LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_register_assign';

CREATE FUNCTION autofailover._adopt_assign(formation text, group_id int, node_id bigint, reported_state text,
    timeline int)
    RETURNS text LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_adopt_assign';

CREATE FUNCTION autofailover._operator(command text, formation text, group_id int, target bigint,
    accept_data_loss bool, what_changed text)
    RETURNS text LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_operator';

CREATE FUNCTION autofailover._group_view(formation text, group_id int,
    OUT primary_node_id bigint, OUT synchronous_standby_names text)
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'autofailover_group_view';

CREATE FUNCTION autofailover._node_health(formation text, group_id int)
    RETURNS TABLE (node_id bigint, keeper_reporting bool, unhealthy bool)
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'autofailover_node_health';

-- Keeper identities and formation secrets (monitor_ext/keeper_identity.cpp).
CREATE FUNCTION autofailover._random_secret() RETURNS text
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_random_secret';
CREATE FUNCTION autofailover._scram_verifier(password text) RETURNS text
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_scram_verifier';

-- The formation's replication password (of autofailover_replicator on its data
-- nodes), handed by register_node to that formation's nodes only. Nobody but the
-- extension's functions reads it: no role gets a grant on this table.
CREATE TABLE autofailover.formation_secrets (
    formation_id text PRIMARY KEY REFERENCES autofailover.formations ON DELETE CASCADE,
    replication_password text NOT NULL DEFAULT autofailover._random_secret()
);
INSERT INTO autofailover.formation_secrets (formation_id) VALUES ('default');
SELECT pg_catalog.pg_extension_config_dump('autofailover.formation_secrets', '');

-- Keeper roles of removed nodes that could not be dropped at once (the keeper's
-- own session confirmed the removal): they can no longer log in, and are dropped
-- by the next register_node or remove_node.
CREATE TABLE autofailover.retired_roles (
    rolname text PRIMARY KEY,
    retired_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The core's list of states, in enum order (see node_state above).
CREATE FUNCTION autofailover.core_node_states() RETURNS text[]
    LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'autofailover_core_node_states';

------------------------------------------------------------------------------
-- Locking. One order everywhere, so no two calls can deadlock:
--   1. a formation-wide change (set_formation_number_sync_standbys,
--      drop_formation) first takes the formation lock, which orders such changes;
--   2. group locks, one per group: a group-level call (every keeper call, the
--      worker's decision, operator commands on a group) takes its group's only; a
--      formation-wide change takes all of them, in ascending group_id.
-- Both are row locks (FOR NO KEY UPDATE of the formations / groups row) that only
-- these SECURITY DEFINER functions take: no other role may lock those rows (it
-- would need UPDATE on the tables), unlike advisory locks, which PUBLIC may take
-- (security review #6). Waiters queue in order (no shared lock a stream of keepers
-- could keep held). A keeper cannot keep them either: the lock helpers' guard ends
-- the session of a non-operator whose transaction holds them longer than
-- autofailover.keeper_transaction_limit, and bounds its waits for them at twice
-- that. The health-check worker waits at most autofailover.decision_lock_timeout.
------------------------------------------------------------------------------
-- Both in C (monitor_ext/decision_lock.cpp), shared with node_active.
CREATE FUNCTION autofailover._lock_formation(formation text) RETURNS void
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_lock_formation';
CREATE FUNCTION autofailover._lock_group(formation text, group_id int) RETURNS void
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_lock_group';

------------------------------------------------------------------------------
-- Validation helpers: clear errors with SQLSTATEs before any write.
------------------------------------------------------------------------------
CREATE FUNCTION autofailover._require(value anyelement, what text)
    RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
END $$;

CREATE FUNCTION autofailover._check_formation(p_formation text)
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM autofailover._require(p_formation, 'formation');
    IF NOT EXISTS (SELECT 1 FROM autofailover.formations f WHERE f.formation_id = p_formation) THEN
        RAISE EXCEPTION 'formation "%" does not exist', left(p_formation, 80)
            USING ERRCODE = 'undefined_object', HINT = 'Create it with autofailover.create_formation().';
    END IF;
END $$;

-- The messages never repeat the value: it may hold what a terminal would interpret.
CREATE FUNCTION autofailover._check_node_name(p_name text)
    RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_problem text := autofailover._node_name_problem(p_name);
BEGIN
    IF v_problem <> '' THEN
        RAISE EXCEPTION 'invalid node name: %', v_problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '1 to 63 printable characters; no control or invisible format characters.';
    END IF;
END $$;

-- Every node gets a replication slot on the primary (max_replication_slots = 12 on data nodes): register_node
-- and adopt_node refuse a node beyond autofailover.max_nodes_per_group. Called under the group lock.
CREATE FUNCTION autofailover._check_group_room(p_formation text, p_group int) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    SELECT count(*) INTO v_count FROM autofailover.nodes n WHERE n.formation_id = p_formation AND n.group_id = p_group;
    IF v_count >= pg_catalog.current_setting('autofailover.max_nodes_per_group')::int THEN
        RAISE EXCEPTION 'group % of formation "%" has % nodes, autofailover.max_nodes_per_group allows %',
            p_group, p_formation, v_count, pg_catalog.current_setting('autofailover.max_nodes_per_group')
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Drop a node first, or put this one in another group.';
    END IF;
END $$;

CREATE FUNCTION autofailover._check_host(p_host text)
    RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_problem text := autofailover._host_problem(p_host);
BEGIN
    IF v_problem <> '' THEN
        RAISE EXCEPTION 'invalid host: %', v_problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the IP address or the DNS name other nodes reach this node at.';
    END IF;
END $$;

-- Finds a node by name; returns (node_id, group_id). ERROR when unknown.
CREATE FUNCTION autofailover._find_node(p_formation text, p_node_name text, OUT o_node_id bigint, OUT o_group_id int)
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM autofailover._check_formation(p_formation);
    PERFORM autofailover._require(p_node_name, 'node_name');
    SELECT n.node_id, n.group_id INTO o_node_id, o_group_id
      FROM autofailover.nodes n WHERE n.formation_id = p_formation AND n.node_name = p_node_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node "%" does not exist in formation "%"', left(p_node_name, 80), p_formation
            USING ERRCODE = 'undefined_object', HINT = 'autofailover.current_state() lists the nodes.';
    END IF;
END $$;

------------------------------------------------------------------------------
-- Keeper identity (docs/security.md). Every node's keeper logs in as its own
-- role autofailover_keeper_<node_id>, member of autofailover_node_keepers, with
-- the password register_node returned once. The keeper protocol acts only on
-- the caller's own node and formation; operators (and superusers) act on any.
------------------------------------------------------------------------------
-- Raises unless the session may act on node p_node_id / read formation
-- p_formation (either may be NULL: not checked). session_user, not current_user:
-- inside these SECURITY DEFINER functions current_user is the extension owner.
CREATE FUNCTION autofailover._authorize(p_formation text, p_node_id bigint)
    RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_node bigint;
    v_formation text;
BEGIN
    SELECT n.node_id, n.formation_id INTO v_node, v_formation
      FROM autofailover.nodes n WHERE n.keeper_role = session_user::text;
    IF FOUND THEN
        IF p_node_id IS NOT NULL AND p_node_id IS DISTINCT FROM v_node THEN
            RAISE EXCEPTION 'permission denied: role % is the keeper of node %, not of node %',
                session_user, v_node, p_node_id
                USING ERRCODE = 'insufficient_privilege', HINT = 'A keeper reports only for its own node.';
        END IF;
        IF p_formation IS NOT NULL AND p_formation IS DISTINCT FROM v_formation THEN
            RAISE EXCEPTION 'permission denied: role % belongs to formation "%", not "%"',
                session_user, v_formation, left(p_formation, 80)
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN;
    END IF;
    IF pg_catalog.pg_has_role(session_user, 'autofailover_operator', 'MEMBER') THEN
        RETURN;
    END IF;
    IF session_user::text ~ '^autofailover_keeper_[0-9]+$' THEN
        RAISE EXCEPTION 'node % is not registered: it was removed from the formation',
            substring(session_user::text FROM '[0-9]+$')
            USING ERRCODE = 'undefined_object', HINT = 'Register it again with autoctl create postgres.';
    END IF;
    RAISE EXCEPTION 'permission denied: role % is neither the keeper of a node nor an operator', session_user
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Keepers log in with the role and password that register_node returned.';
END $$;

-- A direct member of autofailover_node_keepers (pg_has_role would say yes for any superuser).
CREATE FUNCTION autofailover._is_keeper_role(p_role text) RETURNS bool
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                     JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                     JOIN pg_catalog.pg_roles r ON r.oid = m.member
                    WHERE g.rolname = 'autofailover_node_keepers' AND r.rolname = $1)
$$;

-- Drops the keeper roles retired earlier; one that still cannot go stays listed.
CREATE FUNCTION autofailover._drop_retired_roles() RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v_role text;
BEGIN
    FOR v_role IN SELECT r.rolname FROM autofailover.retired_roles r WHERE r.rolname <> session_user::text LOOP
        BEGIN
            EXECUTE pg_catalog.format('DROP ROLE IF EXISTS %I', v_role);
            DELETE FROM autofailover.retired_roles r WHERE r.rolname = v_role;
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- still in use (e.g. a temporary table of a live session): next time
        END;
    END LOOP;
END $$;

-- Creates the LOGIN role of a new node's keeper. Only the SCRAM verifier reaches
-- the statement, so the password cannot land in a server log.
CREATE FUNCTION autofailover._create_keeper_role(p_role text, p_password text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM autofailover._drop_retired_roles();
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
        -- A leftover of this extension (dropped and created again) is replaced; a role
        -- somebody else made with that name is not taken over.
        IF NOT autofailover._is_keeper_role(p_role)
           AND NOT EXISTS (SELECT 1 FROM autofailover.retired_roles r WHERE r.rolname = p_role) THEN
            RAISE EXCEPTION 'role % already exists and is not an autofailover keeper role', p_role
                USING ERRCODE = 'duplicate_object', HINT = 'Drop or rename that role on the monitor.';
        END IF;
        EXECUTE pg_catalog.format('DROP ROLE %I', p_role);
        DELETE FROM autofailover.retired_roles r WHERE r.rolname = p_role;
    END IF;
    -- A keeper needs one connection; the limit keeps a misbehaving one from using up the monitor's.
    EXECUTE pg_catalog.format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
                              'CONNECTION LIMIT 5 PASSWORD %L IN ROLE autofailover_node_keepers',
                              p_role, autofailover._scram_verifier(p_password));
END $$;

-- Removes the keeper role of a removed node. PostgreSQL cannot drop the role of
-- the session that calls (a keeper confirming its own removal), nor one that still
-- owns objects: such a role loses its login and membership now, and is dropped later.
CREATE FUNCTION autofailover._retire_keeper_role(p_role text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF p_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
        RETURN;
    END IF;
    IF p_role <> session_user::text THEN
        BEGIN
            EXECUTE pg_catalog.format('DROP ROLE %I', p_role);
            RETURN;
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- retired below
        END;
    END IF;
    EXECUTE pg_catalog.format('ALTER ROLE %I NOLOGIN', p_role);
    IF autofailover._is_keeper_role(p_role) THEN
        EXECUTE pg_catalog.format('REVOKE autofailover_node_keepers FROM %I', p_role);
    END IF;
    INSERT INTO autofailover.retired_roles (rolname) VALUES (p_role) ON CONFLICT DO NOTHING;
END $$;

-- One events row and one NOTIFY autofailover_state for a change the core did not decide
-- (a node removed, a promotion vetoed); the C side writes its own with the same code
-- (monitor_ext/group_store.cpp, record_state_event).
CREATE FUNCTION autofailover._record_event(formation text, group_id int, node_id bigint, node_name text,
    reported_state autofailover.node_state, goal_state autofailover.node_state, description text)
    RETURNS void LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_record_event';

CREATE FUNCTION autofailover._setting_ms(name text) RETURNS int LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM pg_catalog.current_setting(name)::interval) * 1000)::int
$$;

------------------------------------------------------------------------------
-- Decision entry used by the health-check worker (and after forced removals).
------------------------------------------------------------------------------
-- The health-check worker's entry: like run_decision, but a group whose lock is
-- held longer than autofailover.decision_lock_timeout is skipped for this round
-- (an ERROR, logged by the worker) instead of stalling every other group.
CREATE FUNCTION autofailover._worker_decision(formation text, group_id int)
    RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', pg_catalog.current_setting('autofailover.decision_lock_timeout'),
                                  true);
    RETURN autofailover.run_decision($1, $2);
END $$;

CREATE FUNCTION autofailover.run_decision(formation text, group_id int)
    RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_waiting text;
BEGIN
    PERFORM autofailover._lock_group($1, $2);
    SELECT d.waiting_reason INTO v_waiting FROM autofailover._decide($1, $2, NULL) d;
    RETURN v_waiting;
END $$;

------------------------------------------------------------------------------
-- Keeper protocol.
------------------------------------------------------------------------------
CREATE FUNCTION autofailover._register_node(p_formation text, p_host text, p_port int, p_name text,
    p_group int, p_priority int, p_quorum bool, p_sysid bigint)
    RETURNS TABLE (o_node_id bigint, o_node_name text, o_group_id int, o_goal autofailover.node_state,
                   o_priority int, o_quorum bool, o_keeper_role text, o_keeper_password text,
                   o_replication_password text)
    LANGUAGE plpgsql AS $$
DECLARE
    v_group int := coalesce(p_group, 0);
    v_id bigint;
    v_name text;
    v_goal autofailover.node_state;
    v_role text;
    v_password text;
BEGIN
    PERFORM autofailover._check_formation(p_formation);
    PERFORM autofailover._require(p_host, 'host');
    PERFORM autofailover._require(p_port, 'port');
    PERFORM autofailover._require(p_priority, 'candidate_priority');
    PERFORM autofailover._require(p_quorum, 'replication_quorum');
    PERFORM autofailover._check_host(p_host);
    IF p_port NOT BETWEEN 1 AND 65535 THEN
        RAISE EXCEPTION 'invalid port %: 1 to 65535 expected', p_port USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_priority NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'invalid candidate_priority %: 0 to 100 expected', p_priority
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_group < 0 THEN
        RAISE EXCEPTION 'invalid group_id %: 0 or more expected', v_group USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_name IS NOT NULL THEN
        PERFORM autofailover._check_node_name(p_name);
    END IF;

    -- The group's row is its lock: a new group gets it first (rolled back on any error below).
    INSERT INTO autofailover.groups (formation_id, group_id) VALUES (p_formation, v_group)
        ON CONFLICT DO NOTHING;
    PERFORM autofailover._lock_group(p_formation, v_group);

    IF p_name IS NOT NULL AND EXISTS (SELECT 1 FROM autofailover.nodes n
                                      WHERE n.formation_id = p_formation AND n.node_name = p_name) THEN
        RAISE EXCEPTION 'a node named "%" already exists in formation "%"', p_name, p_formation
            USING ERRCODE = 'unique_violation', HINT = 'Choose another name, or drop the old node first.';
    END IF;
    IF EXISTS (SELECT 1 FROM autofailover.nodes n
               WHERE n.formation_id = p_formation AND n.host = p_host AND n.port = p_port) THEN
        RAISE EXCEPTION 'a node at %:% already exists in formation "%"', p_host, p_port, p_formation
            USING ERRCODE = 'unique_violation', HINT = 'Drop the old node first (autoctl drop node).';
    END IF;
    PERFORM autofailover._check_group_room(p_formation, v_group);
    IF p_sysid IS NOT NULL AND EXISTS (SELECT 1 FROM autofailover.nodes n
            WHERE n.formation_id = p_formation AND n.group_id = v_group
              AND n.system_identifier IS NOT NULL AND n.system_identifier <> p_sysid) THEN
        RAISE EXCEPTION 'system identifier % differs from the other nodes of group %', p_sysid, v_group
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A node must be a copy of the group''s primary: start from an empty data directory.';
    END IF;

    v_id := nextval('autofailover.nodes_node_id_seq');
    v_name := coalesce(p_name, 'node_' || v_id);
    IF p_name IS NULL AND EXISTS (SELECT 1 FROM autofailover.nodes n
                                  WHERE n.formation_id = p_formation AND n.node_name = v_name) THEN
        RAISE EXCEPTION 'a node named "%" already exists in formation "%"', v_name, p_formation
            USING ERRCODE = 'unique_violation', HINT = 'Give the node an explicit name.';
    END IF;
    -- Every registration is a new node with a new role and password: nothing
    -- here hands out the credential of a node that exists already.
    v_role := 'autofailover_keeper_' || v_id;
    v_password := autofailover._random_secret();
    INSERT INTO autofailover.nodes (node_id, formation_id, group_id, node_name, host, port, system_identifier,
                                    candidate_priority, replication_quorum, keeper_role)
        VALUES (v_id, p_formation, v_group, v_name, p_host, p_port, p_sysid, p_priority, p_quorum, v_role);
    INSERT INTO autofailover.node_health (node_id) VALUES (v_id);
    PERFORM autofailover._create_keeper_role(v_role, v_password);
    v_goal := autofailover._register_assign(p_formation, v_group, v_id, p_priority)::autofailover.node_state;
    RETURN QUERY SELECT v_id, v_name, v_group, v_goal, p_priority, p_quorum, v_role, v_password,
                        (SELECT x.replication_password FROM autofailover.formation_secrets x
                          WHERE x.formation_id = p_formation);
END $$;

CREATE FUNCTION autofailover.register_node(formation text, host text, port int, name text DEFAULT NULL,
    group_id int DEFAULT NULL, candidate_priority int DEFAULT 50, replication_quorum bool DEFAULT true,
    system_identifier bigint DEFAULT NULL)
    RETURNS TABLE (node_id bigint, node_name text, group_id int, goal_state autofailover.node_state,
                   candidate_priority int, replication_quorum bool, keeper_role text, keeper_password text,
                   replication_password text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM autofailover._register_node($1, $2, $3, $4, $5, $6, $7, $8)
$$;

-- A new, empty monitor learns a running node from its keeper (docs/monitor-ha.md,
-- M6): the node keeps its id, name, group, priority and quorum, and the role it
-- runs as (the core's adoption_assignment decides its goal or refuses the claim).
-- Called by `autoctl enable monitor` with the bootstrap credential, or an operator.
CREATE FUNCTION autofailover._adopt_node(p_formation text, p_node_id bigint, p_name text, p_host text, p_port int,
    p_group int, p_reported autofailover.node_state, p_timeline int, p_lsn pg_lsn, p_priority int, p_quorum bool,
    p_sysid bigint)
    RETURNS TABLE (o_node_id bigint, o_node_name text, o_group_id int, o_goal autofailover.node_state,
                   o_keeper_role text, o_keeper_password text)
    LANGUAGE plpgsql AS $$
DECLARE
    v_goal autofailover.node_state;
    v_role text;
    v_password text;
BEGIN
    PERFORM autofailover._check_formation(p_formation);
    PERFORM autofailover._require(p_node_id, 'node_id');
    PERFORM autofailover._require(p_name, 'node_name');
    PERFORM autofailover._require(p_host, 'host');
    PERFORM autofailover._require(p_port, 'port');
    PERFORM autofailover._require(p_group, 'group_id');
    PERFORM autofailover._require(p_reported, 'reported_state');
    PERFORM autofailover._require(p_timeline, 'timeline');
    PERFORM autofailover._require(p_lsn, 'lsn');
    PERFORM autofailover._require(p_priority, 'candidate_priority');
    PERFORM autofailover._require(p_quorum, 'replication_quorum');
    PERFORM autofailover._check_host(p_host);
    PERFORM autofailover._check_node_name(p_name);
    IF p_node_id < 1 THEN
        RAISE EXCEPTION 'invalid node_id %: 1 or more expected', p_node_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_port NOT BETWEEN 1 AND 65535 THEN
        RAISE EXCEPTION 'invalid port %: 1 to 65535 expected', p_port USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_priority NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'invalid candidate_priority %: 0 to 100 expected', p_priority
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_group < 0 OR p_timeline < 1 THEN
        RAISE EXCEPTION 'invalid group_id % or timeline %', p_group, p_timeline
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO autofailover.groups (formation_id, group_id) VALUES (p_formation, p_group) ON CONFLICT DO NOTHING;
    PERFORM autofailover._lock_group(p_formation, p_group);
    PERFORM autofailover._check_group_room(p_formation, p_group);

    IF EXISTS (SELECT 1 FROM autofailover.nodes n WHERE n.node_id = p_node_id) THEN
        RAISE EXCEPTION 'node % already exists on this monitor', p_node_id
            USING ERRCODE = 'unique_violation',
                  HINT = 'adopt_node is for a new, empty monitor; this node is known here already.';
    END IF;
    IF EXISTS (SELECT 1 FROM autofailover.nodes n WHERE n.formation_id = p_formation AND n.node_name = p_name) THEN
        RAISE EXCEPTION 'a node named "%" already exists in formation "%"', p_name, p_formation
            USING ERRCODE = 'unique_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM autofailover.nodes n
               WHERE n.formation_id = p_formation AND n.host = p_host AND n.port = p_port) THEN
        RAISE EXCEPTION 'a node at %:% already exists in formation "%"', p_host, p_port, p_formation
            USING ERRCODE = 'unique_violation';
    END IF;
    IF p_sysid IS NOT NULL AND EXISTS (SELECT 1 FROM autofailover.nodes n
            WHERE n.formation_id = p_formation AND n.group_id = p_group
              AND n.system_identifier IS NOT NULL AND n.system_identifier <> p_sysid) THEN
        RAISE EXCEPTION 'system identifier % differs from the other nodes of group %', p_sysid, p_group
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Adopt only nodes of one formation: copies of the same primary.';
    END IF;

    -- Adoption is a report: the keeper observed this state, timeline and LSN just now.
    v_role := 'autofailover_keeper_' || p_node_id;
    v_password := autofailover._random_secret();
    INSERT INTO autofailover.nodes (node_id, formation_id, group_id, node_name, host, port, system_identifier,
                                    reported_state, last_report, pg_is_running, timeline, lsn,
                                    candidate_priority, replication_quorum, keeper_role)
        VALUES (p_node_id, p_formation, p_group, p_name, p_host, p_port, p_sysid, p_reported, clock_timestamp(),
                true, p_timeline, p_lsn, p_priority, p_quorum, v_role);
    INSERT INTO autofailover.node_health (node_id) VALUES (p_node_id);
    -- Later registrations get ids past every adopted one.
    PERFORM pg_catalog.setval('autofailover.nodes_node_id_seq',
                              greatest(p_node_id, (SELECT s.last_value FROM autofailover.nodes_node_id_seq s)));
    v_goal := autofailover._adopt_assign(p_formation, p_group, p_node_id, p_reported::text, p_timeline)
                  ::autofailover.node_state;
    PERFORM autofailover._create_keeper_role(v_role, v_password);
    IF v_goal IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings') THEN
        UPDATE autofailover.groups g SET adoption_deadline = NULL
         WHERE g.formation_id = p_formation AND g.group_id = p_group AND g.adoption_deadline IS NOT NULL;
    ELSIF NOT EXISTS (SELECT 1 FROM autofailover.nodes n
                       WHERE n.formation_id = p_formation AND n.group_id = p_group
                         AND n.goal_state IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings',
                                              'draining', 'demote_timeout', 'prepare_maintenance')) THEN
        UPDATE autofailover.groups g
           SET adoption_deadline = coalesce(g.adoption_deadline, clock_timestamp() +
                   pg_catalog.current_setting('autofailover.adoption_grace_period')::interval)
         WHERE g.formation_id = p_formation AND g.group_id = p_group;
    END IF;
    RETURN QUERY SELECT p_node_id, p_name, p_group, v_goal, v_role, v_password;
END $$;

CREATE FUNCTION autofailover.adopt_node(formation text, node_id bigint, node_name text, host text, port int,
    group_id int, reported_state autofailover.node_state, timeline int, lsn pg_lsn,
    candidate_priority int DEFAULT 50, replication_quorum bool DEFAULT true, system_identifier bigint DEFAULT NULL)
    RETURNS TABLE (node_id bigint, node_name text, group_id int, goal_state autofailover.node_state,
                   keeper_role text, keeper_password text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM autofailover._adopt_node($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
$$;

-- The keeper's removal confirmed (node_active with reported and goal dropped): forget
-- the node, retire its role, let the others adapt. Called by node_active (C) under the
-- group's decision lock.
CREATE FUNCTION autofailover._forget_dropped_node(p_formation text, p_node_id bigint)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_role text;
    v_name text;
    v_group int;
BEGIN
    DELETE FROM autofailover.nodes n WHERE n.node_id = p_node_id
        RETURNING n.keeper_role, n.node_name, n.group_id INTO v_role, v_name, v_group;
    PERFORM autofailover._retire_keeper_role(v_role);
    PERFORM autofailover._record_event(p_formation, v_group, p_node_id, v_name, 'dropped', 'dropped',
                                       format('%s removed from the formation', v_name));
    PERFORM autofailover._decide(p_formation, v_group, NULL);
END $$;

-- The keepers' hot path, in C (monitor_ext/node_active.cpp): validation, the caller's
-- authorization, the group lock, the stale-session check, the report, an event when
-- the reported state changed, the decision and the answer (docs/api.md).
CREATE FUNCTION autofailover.node_active(formation text, node_id bigint, reported_state autofailover.node_state,
    pg_is_running bool, timeline int, lsn pg_lsn, sync_state text DEFAULT '',
    streaming_standbys bigint[] DEFAULT NULL, streaming_flush_lsns pg_lsn[] DEFAULT NULL)
    RETURNS TABLE (goal_state autofailover.node_state, candidate_priority int, replication_quorum bool,
                   primary_node_id bigint, primary_host text, primary_port int,
                   synchronous_standby_names text,
                   upstream_host text, upstream_port int, upstream_lsn pg_lsn,
                   network_partition_timeout_ms int, monitor_leads bool, client_access_version bigint)
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'autofailover_node_active';

CREATE FUNCTION autofailover.get_primary(formation text DEFAULT 'default', group_id int DEFAULT 0)
    RETURNS TABLE (node_id bigint, node_name text, host text, port int)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._authorize($1, NULL);
    RETURN QUERY
        SELECT n.node_id, n.node_name, n.host, n.port
          FROM autofailover._group_view($1, $2) v
          JOIN autofailover.nodes n ON n.node_id = v.primary_node_id;
END $$;

CREATE FUNCTION autofailover.get_nodes(formation text DEFAULT 'default', group_id int DEFAULT NULL)
    RETURNS TABLE (node_id bigint, node_name text, host text, port int, lsn pg_lsn, is_primary bool)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._authorize($1, NULL);
    PERFORM autofailover._check_formation($1);
    RETURN QUERY
        SELECT n.node_id, n.node_name, n.host, n.port, coalesce(autofailover._heartbeat_lsn(n.node_id), n.lsn),
               coalesce(n.node_id = (SELECT v.primary_node_id FROM autofailover._group_view($1, n.group_id) v), false)
          FROM autofailover.nodes n
         WHERE n.formation_id = $1 AND ($2 IS NULL OR n.group_id = $2)
         ORDER BY n.node_id;
END $$;

CREATE FUNCTION autofailover._get_other_nodes(p_node_id bigint)
    RETURNS TABLE (o_node_id bigint, o_node_name text, o_host text, o_port int, o_lsn pg_lsn, o_is_primary bool)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_formation text;
    v_group int;
BEGIN
    PERFORM autofailover._require(p_node_id, 'node_id');
    PERFORM autofailover._authorize(NULL, p_node_id);
    SELECT n.formation_id, n.group_id INTO v_formation, v_group FROM autofailover.nodes n WHERE n.node_id = p_node_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % is not registered', p_node_id USING ERRCODE = 'undefined_object';
    END IF;
    RETURN QUERY
        SELECT n.node_id, n.node_name, n.host, n.port, coalesce(autofailover._heartbeat_lsn(n.node_id), n.lsn),
               coalesce(n.node_id = v.primary_node_id, false)
          FROM autofailover.nodes n, autofailover._group_view(v_formation, v_group) v
         WHERE n.formation_id = v_formation AND n.group_id = v_group AND n.node_id <> p_node_id
         ORDER BY n.node_id;
END $$;

CREATE FUNCTION autofailover.get_other_nodes(node_id bigint)
    RETURNS TABLE (node_id bigint, node_name text, host text, port int, lsn pg_lsn, is_primary bool)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM autofailover._get_other_nodes($1)
$$;

CREATE FUNCTION autofailover._remove_node(p_node_id bigint, p_force bool) RETURNS bool
    LANGUAGE plpgsql AS $$
DECLARE
    v_formation text;
    v_group int;
    v_name text;
    v_reported autofailover.node_state;
    v_role text;
BEGIN
    PERFORM autofailover._require(p_node_id, 'node_id');
    PERFORM autofailover._require(p_force, 'force');
    -- A keeper may ask for its own node's removal, planned by the core; forcing
    -- skips every safety check, so only an operator may.
    PERFORM autofailover._authorize(NULL, p_node_id);
    IF p_force AND NOT pg_catalog.pg_has_role(session_user, 'autofailover_operator', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied: only an operator may force the removal of a node'
            USING ERRCODE = 'insufficient_privilege', HINT = 'Call remove_node without force.';
    END IF;
    SELECT n.formation_id, n.group_id INTO v_formation, v_group FROM autofailover.nodes n WHERE n.node_id = p_node_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % is not registered', p_node_id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM autofailover._lock_group(v_formation, v_group);
    IF NOT p_force THEN
        PERFORM autofailover._operator('remove_node', v_formation, v_group, p_node_id, false, NULL);
        RETURN true;
    END IF;
    DELETE FROM autofailover.nodes n WHERE n.node_id = p_node_id RETURNING n.node_name, n.reported_state, n.keeper_role
        INTO v_name, v_reported, v_role;
    PERFORM autofailover._drop_retired_roles();
    PERFORM autofailover._retire_keeper_role(v_role);
    PERFORM autofailover._record_event(v_formation, v_group, p_node_id, v_name, v_reported, 'dropped',
                                       format('%s removed by the operator (forced)', v_name));
    PERFORM autofailover._decide(v_formation, v_group, NULL);
    RETURN true;
END $$;

CREATE FUNCTION autofailover.remove_node(node_id bigint, force bool DEFAULT false) RETURNS bool
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT autofailover._remove_node($1, $2)
$$;

------------------------------------------------------------------------------
-- Operator API.
------------------------------------------------------------------------------
CREATE FUNCTION autofailover.create_formation(formation text, dbname text DEFAULT 'postgres',
    number_sync_standbys int DEFAULT 0) RETURNS bool
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._require($1, 'formation');
    PERFORM autofailover._require($2, 'dbname');
    PERFORM autofailover._require($3, 'number_sync_standbys');
    IF $1 !~ '^[A-Za-z_][A-Za-z0-9_-]*$' OR length($1) > 63 THEN
        RAISE EXCEPTION 'invalid formation name: up to 63 letters, digits, _ or -, not starting with a digit'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $2 !~ '^[A-Za-z0-9_.-]+$' OR length($2) > 63 THEN
        RAISE EXCEPTION 'invalid dbname: up to 63 letters, digits, _ . or -' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $3 NOT BETWEEN 0 AND 16 THEN
        RAISE EXCEPTION 'invalid number_sync_standbys %: 0 to 16 expected', $3
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A concurrent creation of the same name waits on the primary key, then finds it taken.
    INSERT INTO autofailover.formations (formation_id, dbname, number_sync_standbys) VALUES ($1, $2, $3)
        ON CONFLICT (formation_id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'formation "%" already exists', $1 USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO autofailover.formation_secrets (formation_id) VALUES ($1);
    RETURN true;
END $$;

CREATE FUNCTION autofailover.drop_formation(formation text) RETURNS bool
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._check_formation($1);
    PERFORM autofailover._lock_formation($1);
    IF EXISTS (SELECT 1 FROM autofailover.nodes n WHERE n.formation_id = $1) THEN
        RAISE EXCEPTION 'formation "%" still has nodes', $1
            USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Drop its nodes first.';
    END IF;
    DELETE FROM autofailover.formations f WHERE f.formation_id = $1;
    RETURN true;
END $$;

CREATE FUNCTION autofailover._operator_on_group(p_command text, p_formation text, p_group int,
    p_target bigint DEFAULT NULL, p_accept_data_loss bool DEFAULT false, p_what text DEFAULT NULL)
    RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM autofailover._check_formation(p_formation);
    PERFORM autofailover._require(p_group, 'group_id');
    PERFORM autofailover._lock_group(p_formation, p_group);
    IF NOT EXISTS (SELECT 1 FROM autofailover.nodes n WHERE n.formation_id = p_formation AND n.group_id = p_group) THEN
        RAISE EXCEPTION 'group % of formation "%" has no nodes', p_group, p_formation
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN autofailover._operator(p_command, p_formation, p_group, p_target, p_accept_data_loss, p_what);
END $$;

CREATE FUNCTION autofailover.perform_switchover(formation text DEFAULT 'default', group_id int DEFAULT 0)
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void FROM autofailover._operator_on_group('switchover', $1, $2)
$$;

CREATE FUNCTION autofailover.perform_failover(formation text DEFAULT 'default', group_id int DEFAULT 0,
    accept_data_loss bool DEFAULT false)
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void FROM autofailover._operator_on_group('failover', $1, $2, NULL, coalesce($3, false))
$$;

CREATE FUNCTION autofailover._operator_on_node(p_command text, p_formation text, p_node_name text)
    RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
    v_node_id bigint;
    v_group int;
BEGIN
    SELECT f.o_node_id, f.o_group_id INTO v_node_id, v_group FROM autofailover._find_node(p_formation, p_node_name) f;
    PERFORM autofailover._operator_on_group(p_command, p_formation, v_group, v_node_id);
    RETURN true;
END $$;

CREATE FUNCTION autofailover.perform_promotion(formation text, node_name text) RETURNS bool
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT autofailover._operator_on_node('promotion', $1, $2)
$$;

CREATE FUNCTION autofailover.start_maintenance(formation text, node_name text) RETURNS bool
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT autofailover._operator_on_node('start_maintenance', $1, $2)
$$;

CREATE FUNCTION autofailover.stop_maintenance(formation text, node_name text) RETURNS bool
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT autofailover._operator_on_node('stop_maintenance', $1, $2)
$$;

CREATE FUNCTION autofailover.remove_node_by_name(formation text, node_name text, force bool DEFAULT false)
    RETURNS bool LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT autofailover._remove_node(f.o_node_id, $3) FROM autofailover._find_node($1, $2) f
$$;

-- Changes one node setting under the group lock; the core re-plans the
-- primary's synchronous_standby_names or refuses (then nothing is changed).
CREATE FUNCTION autofailover._set_node_setting(p_formation text, p_node_name text, p_priority int, p_quorum bool)
    RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
    v_node_id bigint;
    v_group int;
    v_what text;
BEGIN
    SELECT f.o_node_id, f.o_group_id INTO v_node_id, v_group FROM autofailover._find_node(p_formation, p_node_name) f;
    PERFORM autofailover._lock_group(p_formation, v_group);
    IF p_priority IS NOT NULL THEN
        UPDATE autofailover.nodes n SET candidate_priority = p_priority WHERE n.node_id = v_node_id;
        v_what := format('candidate_priority of %s set to %s', p_node_name, p_priority);
    ELSE
        UPDATE autofailover.nodes n SET replication_quorum = p_quorum WHERE n.node_id = v_node_id;
        v_what := format('replication_quorum of %s set to %s', p_node_name, p_quorum);
    END IF;
    PERFORM autofailover._operator('apply_settings', p_formation, v_group, v_node_id, false, v_what);
    RETURN true;
END $$;

CREATE FUNCTION autofailover.set_node_candidate_priority(formation text, node_name text, candidate_priority int)
    RETURNS bool LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._require($3, 'candidate_priority');
    IF $3 NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'invalid candidate_priority %: 0 to 100 expected', $3
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN autofailover._set_node_setting($1, $2, $3, NULL);
END $$;

CREATE FUNCTION autofailover.set_node_replication_quorum(formation text, node_name text, replication_quorum bool)
    RETURNS bool LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._require($3, 'replication_quorum');
    RETURN autofailover._set_node_setting($1, $2, NULL, $3);
END $$;

CREATE FUNCTION autofailover.set_formation_number_sync_standbys(formation text, number_sync_standbys int)
    RETURNS bool LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_group int;
BEGIN
    PERFORM autofailover._check_formation($1);
    PERFORM autofailover._require($2, 'number_sync_standbys');
    IF $2 NOT BETWEEN 0 AND 16 THEN
        RAISE EXCEPTION 'invalid number_sync_standbys %: 0 to 16 expected', $2
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Formation-wide change: exclusive formation lock, then group locks in ascending order.
    PERFORM autofailover._lock_formation($1);
    UPDATE autofailover.formations f SET number_sync_standbys = $2 WHERE f.formation_id = $1;
    FOR v_group IN SELECT DISTINCT n.group_id FROM autofailover.nodes n WHERE n.formation_id = $1 ORDER BY 1 LOOP
        PERFORM autofailover._lock_group($1, v_group);
        PERFORM autofailover._operator('apply_settings', $1, v_group, NULL, false,
                                       format('number_sync_standbys set to %s', $2));
    END LOOP;
    RETURN true;
END $$;

CREATE FUNCTION autofailover.synchronous_standby_names(formation text DEFAULT 'default', group_id int DEFAULT 0)
    RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.synchronous_standby_names FROM autofailover._group_view($1, $2) v
$$;

CREATE FUNCTION autofailover.formation_uri(formation text DEFAULT 'default', sslmode text DEFAULT 'prefer')
    RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_hosts text;
    v_dbname text;
BEGIN
    PERFORM autofailover._check_formation($1);
    PERFORM autofailover._require($2, 'sslmode');
    IF $2 NOT IN ('disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full') THEN
        RAISE EXCEPTION 'invalid sslmode "%"', left($2, 80) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT f.dbname INTO v_dbname FROM autofailover.formations f WHERE f.formation_id = $1;
    SELECT string_agg(CASE WHEN n.host LIKE '%:%' THEN '[' || n.host || ']' ELSE n.host END || ':' || n.port,
                      ',' ORDER BY n.node_id)
      INTO v_hosts FROM autofailover.nodes n WHERE n.formation_id = $1;
    IF v_hosts IS NULL THEN
        RAISE EXCEPTION 'formation "%" has no nodes yet', $1 USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN format('postgres://%s/%s?target_session_attrs=read-write&sslmode=%s', v_hosts, v_dbname, $2);
END $$;

CREATE FUNCTION autofailover.current_state(formation text DEFAULT 'default')
    RETURNS TABLE (node_id bigint, node_name text, group_id int, host text, port int,
                   reported_state autofailover.node_state, goal_state autofailover.node_state, timeline int,
                   lsn pg_lsn, health text, pg_is_running bool, keeper_last_report timestamptz,
                   keeper_reporting bool, candidate_priority int, replication_quorum bool, sync_state text,
                   waiting_reason text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._check_formation($1);
    RETURN QUERY
        SELECT n.node_id, n.node_name, n.group_id, n.host, n.port, n.reported_state, n.goal_state, n.timeline,
               coalesce(autofailover._heartbeat_lsn(n.node_id), n.lsn), coalesce(h.health, 'unknown'), n.pg_is_running,
               coalesce(autofailover._heartbeat_at(n.node_id), n.last_report), j.keeper_reporting,
               n.candidate_priority, n.replication_quorum, n.sync_state, g.waiting_reason
          FROM autofailover.nodes n
          JOIN autofailover.groups g ON g.formation_id = n.formation_id AND g.group_id = n.group_id
          LEFT JOIN autofailover.node_health h ON h.node_id = n.node_id
          JOIN LATERAL autofailover._node_health(n.formation_id, n.group_id) j ON j.node_id = n.node_id
         WHERE n.formation_id = $1
         ORDER BY n.group_id, n.node_id;
END $$;

CREATE FUNCTION autofailover.last_events(formation text DEFAULT 'default', count int DEFAULT 10)
    RETURNS TABLE (event_id bigint, event_time timestamptz, node_id bigint, node_name text, group_id int,
                   reported_state autofailover.node_state, goal_state autofailover.node_state, description text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._check_formation($1);
    PERFORM autofailover._require($2, 'count');
    IF $2 < 0 THEN
        RAISE EXCEPTION 'invalid count %: 0 or more expected', $2 USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT e.* FROM (
            SELECT e.event_id, e.event_time, e.node_id, e.node_name, e.group_id, e.reported_state, e.goal_state,
                   e.description
              FROM autofailover.events e WHERE e.formation_id = $1
             ORDER BY e.event_id DESC LIMIT $2) e
         ORDER BY e.event_id;
END $$;

CREATE FUNCTION autofailover.formation_settings(formation text DEFAULT 'default')
    RETURNS TABLE (setting text, value text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._check_formation($1);
    RETURN QUERY
        SELECT 'dbname'::text, f.dbname FROM autofailover.formations f WHERE f.formation_id = $1
        UNION ALL
        SELECT 'number_sync_standbys', f.number_sync_standbys::text
          FROM autofailover.formations f WHERE f.formation_id = $1
        UNION ALL
        SELECT s.name::text, pg_catalog.current_setting(s.name)
          FROM unnest(ARRAY['autofailover.health_check_period', 'autofailover.health_check_timeout',
                            'autofailover.health_check_max_retries', 'autofailover.health_check_retry_delay',
                            'autofailover.node_considered_unhealthy_timeout',
                            'autofailover.network_partition_timeout', 'autofailover.fencing_margin',
                            'autofailover.startup_grace_period', 'autofailover.switchover_timeout',
                            'autofailover.max_nodes_per_group', 'autofailover.keeper_transaction_limit',
                            'autofailover.decision_lock_timeout']) AS s(name);
END $$;

------------------------------------------------------------------------------
-- Roles and privileges. Keepers get only the keeper protocol; operators get
-- that plus the operator API; nobody gets the tables or the internals.
------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'autofailover_keeper') THEN
        CREATE ROLE autofailover_keeper LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'autofailover_operator') THEN
        CREATE ROLE autofailover_operator NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'autofailover_node_keepers') THEN
        CREATE ROLE autofailover_node_keepers NOLOGIN;
    END IF;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA autofailover FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA autofailover FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA autofailover FROM PUBLIC;
GRANT USAGE ON SCHEMA autofailover TO autofailover_keeper, autofailover_node_keepers, autofailover_operator;
GRANT USAGE ON TYPE autofailover.node_state TO autofailover_keeper, autofailover_node_keepers, autofailover_operator;

-- The bootstrap role (the URI autoctl create monitor prints) may only register;
-- each node's own role then runs the keeper protocol for that node only.
GRANT EXECUTE ON FUNCTION
    autofailover.register_node(text, text, int, text, int, int, bool, bigint)
    TO autofailover_keeper, autofailover_operator;
-- Adoption by a new, empty monitor (docs/monitor-ha.md, M6): the same trust as a registration.
GRANT EXECUTE ON FUNCTION
    autofailover.adopt_node(text, bigint, text, text, int, int, autofailover.node_state, int, pg_lsn, int, bool, bigint)
    TO autofailover_keeper, autofailover_operator;
GRANT EXECUTE ON FUNCTION
    autofailover.node_active(text, bigint, autofailover.node_state, bool, int, pg_lsn, text, bigint[], pg_lsn[]),
    autofailover.get_primary(text, int),
    autofailover.get_nodes(text, int),
    autofailover.get_other_nodes(bigint),
    autofailover.remove_node(bigint, bool)
    TO autofailover_node_keepers, autofailover_operator;

GRANT EXECUTE ON FUNCTION
    autofailover.create_formation(text, text, int),
    autofailover.drop_formation(text),
    autofailover.perform_switchover(text, int),
    autofailover.perform_failover(text, int, bool),
    autofailover.perform_promotion(text, text),
    autofailover.start_maintenance(text, text),
    autofailover.stop_maintenance(text, text),
    autofailover.set_node_candidate_priority(text, text, int),
    autofailover.set_node_replication_quorum(text, text, bool),
    autofailover.set_formation_number_sync_standbys(text, int),
    autofailover.remove_node_by_name(text, text, bool),
    autofailover.synchronous_standby_names(text, int),
    autofailover.formation_uri(text, text),
    autofailover.current_state(text),
    autofailover.last_events(text, int),
    autofailover.formation_settings(text),
    autofailover.core_node_states()
    TO autofailover_operator;
GRANT SELECT ON autofailover.formations, autofailover.nodes, autofailover.node_health, autofailover.events,
    autofailover.groups TO autofailover_operator;

------------------------------------------------------------------------------
-- BEGIN monitor HA (docs/monitor-ha.md): the leader lease of replicated
-- monitors. Renewed by the monitor agent (a superuser connection) after every
-- etcd keepalive; enforced by monitor_ext/leader_lease.cpp when
-- autofailover.require_leader_lease is on.
------------------------------------------------------------------------------
CREATE FUNCTION autofailover.renew_leader_lease(valid_for_ms int, from_clock_ns bigint DEFAULT NULL)
    RETURNS bool LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_renew_leader_lease';

CREATE FUNCTION autofailover.leader_lease_clock() RETURNS bigint
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_leader_lease_clock';

CREATE FUNCTION autofailover.leader_lease(OUT required bool, OUT granted bool, OUT valid bool,
    OUT expires_in_ms bigint, OUT leader_since timestamptz)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_leader_lease';

REVOKE ALL ON FUNCTION autofailover.renew_leader_lease(int, bigint), autofailover.leader_lease_clock(),
    autofailover.leader_lease() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autofailover.leader_lease(), autofailover.leader_lease_clock()
    TO autofailover_operator, pg_monitor;
-- END monitor HA

------------------------------------------------------------------------------
-- BEGIN pre_promote veto (docs/operations.md, "Hooks"): a keeper whose pre_promote
-- hook refused a promotion says so here. The pure core then elects another node
-- (or aborts a switchover), and does not elect this one again for
-- autofailover.promotion_veto_timeout.
------------------------------------------------------------------------------
CREATE TABLE autofailover.promotion_vetoes (
    node_id bigint PRIMARY KEY REFERENCES autofailover.nodes ON DELETE CASCADE,
    vetoed_at timestamptz NOT NULL,
    reason text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('autofailover.promotion_vetoes', '');

CREATE FUNCTION autofailover._report_promotion_veto(p_formation text, p_node_id bigint, p_reason text)
    RETURNS autofailover.node_state LANGUAGE plpgsql AS $$
DECLARE
    v_group int;
    v_name text;
    v_reported autofailover.node_state;
    v_goal autofailover.node_state;
    -- The hook's own words, on one line and bounded: it lands in the event log.
    v_reason text := left(regexp_replace(coalesce(p_reason, ''), '[[:cntrl:]]+', ' ', 'g'), 300);
    v_description text;
    v_decision record;
BEGIN
    PERFORM autofailover._require(p_formation, 'formation');
    PERFORM autofailover._require(p_node_id, 'node_id');
    PERFORM autofailover._authorize(p_formation, p_node_id);
    SELECT n.group_id INTO v_group FROM autofailover.nodes n
     WHERE n.node_id = p_node_id AND n.formation_id = p_formation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % is not registered in formation "%"', p_node_id, left(p_formation, 80)
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM autofailover._lock_group(p_formation, v_group);
    SELECT n.node_name, n.reported_state, n.goal_state INTO v_name, v_reported, v_goal
      FROM autofailover.nodes n WHERE n.node_id = p_node_id;
    INSERT INTO autofailover.promotion_vetoes AS v (node_id, vetoed_at, reason)
        VALUES (p_node_id, clock_timestamp(), v_reason)
        ON CONFLICT (node_id) DO UPDATE SET vetoed_at = excluded.vetoed_at, reason = excluded.reason;
    v_description := format('the pre_promote hook of %s vetoed its promotion (goal %s): %s', v_name, v_goal,
                            v_reason);
    PERFORM autofailover._record_event(p_formation, v_group, p_node_id, v_name, v_reported, v_goal, v_description);
    SELECT * INTO v_decision FROM autofailover._decide(p_formation, v_group, p_node_id) d;
    RETURN v_decision.goal_state::autofailover.node_state;
END $$;

CREATE FUNCTION autofailover.report_promotion_veto(formation text, node_id bigint, reason text)
    RETURNS autofailover.node_state
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT autofailover._report_promotion_veto($1, $2, $3)
$$;

REVOKE ALL ON autofailover.promotion_vetoes FROM PUBLIC;
REVOKE ALL ON FUNCTION autofailover._report_promotion_veto(text, bigint, text),
    autofailover.report_promotion_veto(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autofailover.report_promotion_veto(text, bigint, text)
    TO autofailover_node_keepers, autofailover_operator;
GRANT SELECT ON autofailover.promotion_vetoes TO autofailover_operator;
-- END pre_promote veto
-- BEGIN metrics (docs/operations.md, "Metrics"): autofailover.metrics(), the
-- source of `autoctl show metrics` (Prometheus text format).
------------------------------------------------------------------------------
-- The last probe's duration in seconds, retries included (written by the health-check worker).
ALTER TABLE autofailover.node_health ADD COLUMN probe_seconds double precision;

-- Monitor-wide counters in shared memory (monitor_ext/metrics.cpp), zero when Postgres starts.
CREATE FUNCTION autofailover._monitor_counters(OUT decisions bigint, OUT decision_seconds double precision,
    OUT last_decision_seconds double precision, OUT probes_up bigint, OUT probes_down bigint)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_monitor_counters';

-- Prometheus label set from name/value pairs, values escaped as the text format wants (\\, \", \n).
CREATE FUNCTION autofailover._prom_labels(VARIADIC pairs text[]) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '{' || string_agg(pairs[i] || '="' ||
                             replace(replace(replace(pairs[i + 1], '\', '\\'), '"', '\"'), E'\n', '\n') || '"',
                             ',' ORDER BY i) || '}'
      FROM generate_series(1, coalesce(array_length(pairs, 1), 0), 2) AS i
$$;

-- One row per sample: `name`, `labels` (already in the text format, '' when none), `value`,
-- `type` (gauge|counter) and `help`; ordered so that a metric's samples follow each other.
-- Failovers and switchovers are counted from the events table (docs/operations.md says how).
CREATE FUNCTION autofailover.metrics(formation text DEFAULT NULL)
    RETURNS TABLE (name text, labels text, value double precision, type text, help text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF $1 IS NOT NULL THEN
        PERFORM autofailover._check_formation($1);
    END IF;
    RETURN QUERY
    WITH grp AS (
        SELECT g.formation_id, g.group_id, v.primary_node_id,
               autofailover._prom_labels('formation', g.formation_id, 'group', g.group_id::text) AS l
          FROM autofailover.groups g
          CROSS JOIN LATERAL autofailover._group_view(g.formation_id, g.group_id) v
         WHERE ($1 IS NULL OR g.formation_id = $1)
           AND EXISTS (SELECT 1 FROM autofailover.nodes n
                        WHERE n.formation_id = g.formation_id AND n.group_id = g.group_id)),
    nd AS (
        SELECT n.*, h.health, h.last_health_check, h.probe_seconds, j.keeper_reporting, grp.primary_node_id,
               coalesce(autofailover._heartbeat_lsn(p.node_id), p.lsn) AS primary_lsn,
               coalesce(autofailover._heartbeat_lsn(n.node_id), n.lsn) AS live_lsn,
               coalesce(autofailover._heartbeat_at(n.node_id), n.last_report) AS live_last_report,
               autofailover._prom_labels('formation', n.formation_id, 'group', n.group_id::text,
                                         'node', n.node_name, 'node_id', n.node_id::text) AS l
          FROM autofailover.nodes n
          JOIN grp ON grp.formation_id = n.formation_id AND grp.group_id = n.group_id
          LEFT JOIN autofailover.node_health h ON h.node_id = n.node_id
          LEFT JOIN autofailover.nodes p ON p.node_id = grp.primary_node_id
          JOIN LATERAL autofailover._node_health(n.formation_id, n.group_id) j ON j.node_id = n.node_id),
    ev AS (
        SELECT e.formation_id, e.group_id,
               -- the assignment itself (a primary told to drain), not the reports that follow it
               count(*) FILTER (WHERE e.goal_state = 'draining' AND e.reported_state IN
                   ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')) AS switchovers,
               count(*) FILTER (WHERE e.goal_state = 'demoted' AND e.reported_state IN
                   ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings', 'demote_timeout',
                    'prepare_maintenance')) AS failovers
          FROM autofailover.events e
         WHERE ($1 IS NULL OR e.formation_id = $1) AND e.group_id IS NOT NULL
         GROUP BY e.formation_id, e.group_id),
    samples AS (
        SELECT 'autofailover_node_reported_state' AS n, autofailover._prom_labels('formation', nd.formation_id,
                   'group', nd.group_id::text, 'node', nd.node_name, 'node_id', nd.node_id::text,
                   'state', nd.reported_state::text) AS l, 1::float8 AS v, 'gauge' AS t,
               'The state the node''s keeper last reported (1 for that state).' AS h FROM nd
        UNION ALL
        SELECT 'autofailover_node_goal_state', autofailover._prom_labels('formation', nd.formation_id,
                   'group', nd.group_id::text, 'node', nd.node_name, 'node_id', nd.node_id::text,
                   'state', nd.goal_state::text), 1, 'gauge',
               'The goal state the monitor assigned to the node (1 for that state).' FROM nd
        UNION ALL
        SELECT 'autofailover_node_is_primary', nd.l, (nd.node_id = nd.primary_node_id IS TRUE)::int, 'gauge',
               '1 for the node standbys follow (the group''s primary), else 0.' FROM nd
        UNION ALL
        SELECT 'autofailover_node_pg_running', nd.l, nd.pg_is_running::int, 'gauge',
               'Whether the keeper last reported Postgres running.' FROM nd
        UNION ALL
        SELECT 'autofailover_node_timeline', nd.l, nd.timeline, 'gauge',
               'The timeline the keeper last reported.' FROM nd
        UNION ALL
        SELECT 'autofailover_node_lag_bytes', nd.l, greatest(nd.primary_lsn - nd.live_lsn, 0)::float8, 'gauge',
               'Bytes of WAL between the primary''s last reported LSN and this node''s (absent without a primary).'
          FROM nd WHERE nd.primary_lsn IS NOT NULL
        UNION ALL
        SELECT 'autofailover_node_candidate_priority', nd.l, nd.candidate_priority, 'gauge',
               'candidate_priority of the node (0: never promoted).' FROM nd
        UNION ALL
        SELECT 'autofailover_node_last_report_age_seconds', nd.l,
               extract(epoch FROM clock_timestamp() - nd.live_last_report)::float8, 'gauge',
               'Seconds since the node''s keeper last reported (absent before its first report).'
          FROM nd WHERE nd.live_last_report IS NOT NULL
        UNION ALL
        SELECT 'autofailover_node_keeper_reporting', nd.l, nd.keeper_reporting::int, 'gauge',
               'Whether the keeper reported within node_considered_unhealthy_timeout (the core''s judgement).' FROM nd
        UNION ALL
        SELECT 'autofailover_node_probe_up', nd.l, (nd.health = 'good')::int, 'gauge',
               'Result of the monitor''s last health probe of the node (absent before the first).'
          FROM nd WHERE nd.health IN ('good', 'bad')
        UNION ALL
        SELECT 'autofailover_node_probe_duration_seconds', nd.l, nd.probe_seconds, 'gauge',
               'Duration of the last health probe of the node, retries included.'
          FROM nd WHERE nd.probe_seconds IS NOT NULL
        UNION ALL
        SELECT 'autofailover_node_last_probe_age_seconds', nd.l,
               extract(epoch FROM clock_timestamp() - nd.last_health_check)::float8, 'gauge',
               'Seconds since the last health probe of the node ended.' FROM nd WHERE nd.last_health_check IS NOT NULL
        UNION ALL
        SELECT 'autofailover_group_nodes', grp.l, count(*)::float8, 'gauge', 'Nodes registered in the group.'
          FROM grp JOIN nd ON nd.formation_id = grp.formation_id AND nd.group_id = grp.group_id
         GROUP BY grp.l
        UNION ALL
        SELECT 'autofailover_group_has_primary', grp.l, (grp.primary_node_id IS NOT NULL)::int, 'gauge',
               'Whether the group has a primary for standbys to follow (0 during a failover).' FROM grp
        UNION ALL
        SELECT 'autofailover_group_sync_standbys', grp.l,
               (SELECT count(*) FROM nd s JOIN nd p ON p.node_id = grp.primary_node_id
                 WHERE s.formation_id = grp.formation_id AND s.group_id = grp.group_id
                   AND s.node_id <> p.node_id AND s.reported_state = 'secondary' AND s.replication_quorum
                   AND s.node_id = ANY (p.streaming_standbys))::float8, 'gauge',
               'Quorum standbys in state secondary that the primary reports streaming (0 without a primary).'
          FROM grp
        UNION ALL
        SELECT 'autofailover_formation_number_sync_standbys',
               autofailover._prom_labels('formation', f.formation_id), f.number_sync_standbys, 'gauge',
               'number_sync_standbys of the formation.'
          FROM autofailover.formations f WHERE $1 IS NULL OR f.formation_id = $1
        UNION ALL
        SELECT 'autofailover_switchovers_total', grp.l, coalesce(ev.switchovers, 0)::float8, 'counter',
               'Primaries asked to hand over (goal draining: switchover, promotion), from the events table.'
          FROM grp LEFT JOIN ev ON ev.formation_id = grp.formation_id AND ev.group_id = grp.group_id
        UNION ALL
        SELECT 'autofailover_failovers_total', grp.l, coalesce(ev.failovers, 0)::float8, 'counter',
               'Primaries declared failed (goal demoted while reporting a primary state), from the events table.'
          FROM grp LEFT JOIN ev ON ev.formation_id = grp.formation_id AND ev.group_id = grp.group_id
        UNION ALL
        SELECT 'autofailover_events_total', autofailover._prom_labels('formation', f.formation_id),
               (SELECT count(*) FROM autofailover.events e WHERE e.formation_id = f.formation_id)::float8,
               'counter', 'Events (goal changes, removals) recorded for the formation.'
          FROM autofailover.formations f WHERE $1 IS NULL OR f.formation_id = $1
        UNION ALL
        SELECT 'autofailover_decisions_total', '', c.decisions, 'counter',
               'Decisions taken by this monitor since Postgres started (keeper reports and health-check rounds).'
          FROM autofailover._monitor_counters() c
        UNION ALL
        SELECT 'autofailover_decision_seconds_total', '', c.decision_seconds, 'counter',
               'Time spent in those decisions (load, core, store), since Postgres started.'
          FROM autofailover._monitor_counters() c
        UNION ALL
        SELECT 'autofailover_last_decision_seconds', '', c.last_decision_seconds, 'gauge',
               'Duration of the last decision.' FROM autofailover._monitor_counters() c
        UNION ALL
        SELECT 'autofailover_probes_total', autofailover._prom_labels('result', 'up'), c.probes_up, 'counter',
               'Health probes stored since Postgres started, by result.' FROM autofailover._monitor_counters() c
        UNION ALL
        SELECT 'autofailover_probes_total', autofailover._prom_labels('result', 'down'), c.probes_down, 'counter',
               'Health probes stored since Postgres started, by result.' FROM autofailover._monitor_counters() c)
    SELECT s.n, s.l, s.v, s.t, s.h FROM samples s ORDER BY s.n, s.l;
END $$;

REVOKE ALL ON FUNCTION autofailover._monitor_counters(), autofailover._prom_labels(text[]),
    autofailover.metrics(text) FROM PUBLIC;
-- pg_monitor: a Prometheus exporter may scrape with a role that can do nothing else.
GRANT EXECUTE ON FUNCTION autofailover.metrics(text) TO autofailover_operator, pg_monitor;
GRANT USAGE ON SCHEMA autofailover TO pg_monitor;
-- END metrics

------------------------------------------------------------------------------
-- BEGIN dry-run (autoctl perform switchover|failover|promotion --dry-run):
-- the operator command planned and its outcome simulated by the core on the
-- stored snapshot; nothing written, no lock taken (autoctl calls it in a
-- REPEATABLE READ, READ ONLY transaction: one consistent snapshot).
------------------------------------------------------------------------------
CREATE FUNCTION autofailover._operator_preview(command text, formation text, group_id int, target bigint,
    accept_data_loss bool)
    RETURNS TABLE (node_id bigint, planned_goal text, reason text, would_be_promoted bool, waiting_reason text,
                   would_wait_ms bigint, would_wait_for text)
    LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'autofailover_operator_preview';

CREATE FUNCTION autofailover.plan_operation(command text, formation text DEFAULT 'default', group_id int DEFAULT 0,
    node text DEFAULT NULL, accept_data_loss bool DEFAULT false)
    RETURNS TABLE (node_id bigint, node_name text, reported_state autofailover.node_state,
                   goal_state autofailover.node_state, planned_goal_state text, reason text, timeline int,
                   lsn pg_lsn, is_primary bool, lsn_behind_primary numeric, would_be_promoted bool,
                   waiting_reason text, would_wait_ms bigint, would_wait_for text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_group int := $3;
    v_target bigint;
    v_primary bigint;
BEGIN
    PERFORM autofailover._require($1, 'command');
    IF $1 NOT IN ('switchover', 'failover', 'promotion') THEN
        RAISE EXCEPTION 'invalid command "%": switchover, failover or promotion expected', $1
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM autofailover._check_formation($2);
    IF $1 = 'promotion' THEN
        PERFORM autofailover._require($4, 'node');
        SELECT f.o_node_id, f.o_group_id INTO v_target, v_group FROM autofailover._find_node($2, $4) f;
    END IF;
    PERFORM autofailover._require(v_group, 'group_id');
    IF NOT EXISTS (SELECT 1 FROM autofailover.nodes n WHERE n.formation_id = $2 AND n.group_id = v_group) THEN
        RAISE EXCEPTION 'group % of formation "%" has no nodes', v_group, $2 USING ERRCODE = 'undefined_object';
    END IF;
    SELECT v.primary_node_id INTO v_primary FROM autofailover._group_view($2, v_group) v;
    RETURN QUERY
        SELECT n.node_id, n.node_name, n.reported_state, n.goal_state, p.planned_goal, p.reason, n.timeline, coalesce(autofailover._heartbeat_lsn(n.node_id), n.lsn),
               n.node_id = v_primary IS TRUE,
               CASE WHEN pr.node_id IS NOT NULL AND pr.timeline = n.timeline
                    THEN greatest(coalesce(autofailover._heartbeat_lsn(pr.node_id), pr.lsn) - coalesce(autofailover._heartbeat_lsn(n.node_id), n.lsn), 0) END,
               p.would_be_promoted, p.waiting_reason, p.would_wait_ms, p.would_wait_for
          FROM autofailover._operator_preview($1, $2, v_group, v_target, coalesce($5, false)) p
          JOIN autofailover.nodes n ON n.node_id = p.node_id
          LEFT JOIN autofailover.nodes pr ON pr.node_id = v_primary
         ORDER BY n.node_id;
END $$;

REVOKE ALL ON FUNCTION autofailover._operator_preview(text, text, int, bigint, bool),
    autofailover.plan_operation(text, text, int, text, bool) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autofailover.plan_operation(text, text, int, text, bool) TO autofailover_operator;
-- END dry-run
-- BEGIN formation client access (docs/clients.md, "One list for the whole
-- formation"): application networks every node of a formation admits, set once
-- on the monitor. node_active returns only `version`; a keeper whose applied
-- version differs fetches the list with formation_client_access() and merges it
-- with its own keeper.json list in its pg_hba.conf block (the keeper checks each
-- value again before writing it).
------------------------------------------------------------------------------
-- The shared validators of libautofailover/input_validation.cpp: why a value is refused, '' when it is not.
CREATE FUNCTION autofailover._client_network_problem(network text) RETURNS text
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'autofailover_client_network_problem';
CREATE FUNCTION autofailover._client_database_problem(databases text) RETURNS text
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'autofailover_client_database_problem';
CREATE FUNCTION autofailover._client_role_problem(roles text) RETURNS text
    LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'autofailover_client_role_problem';

-- The first refused network of a list ('' when all are accepted; NULL items and more than 64 are refused).
CREATE FUNCTION autofailover._client_networks_problem(networks text[]) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN networks IS NULL THEN 'a list of networks expected'
        WHEN array_ndims(networks) > 1 THEN 'a one-dimensional list expected'
        WHEN cardinality(networks) > 64 THEN 'at most 64 networks'
        WHEN array_position(networks, NULL) IS NOT NULL THEN 'no NULL network'
        ELSE coalesce((SELECT 'network ' || o::text || ': ' || autofailover._client_network_problem(n)
                         FROM unnest(networks) WITH ORDINALITY AS u(n, o)
                        WHERE autofailover._client_network_problem(n) <> '' ORDER BY o LIMIT 1), '')
    END
$$;

CREATE TABLE autofailover.formation_client_access (
    formation_id text PRIMARY KEY REFERENCES autofailover.formations ON DELETE CASCADE,
    networks text[] NOT NULL DEFAULT '{}' CHECK (autofailover._client_networks_problem(networks) = ''),
    client_database text NOT NULL DEFAULT 'all' CHECK (autofailover._client_database_problem(client_database) = ''),
    client_role text NOT NULL DEFAULT 'all' CHECK (autofailover._client_role_problem(client_role) = ''),
    -- Bumped by every set_formation_allow_clients(), never reused while the row lives.
    version bigint NOT NULL DEFAULT 1 CHECK (version > 0)
);
SELECT pg_catalog.pg_extension_config_dump('autofailover.formation_client_access', '');

-- Replaces the formation's list ('{}' removes every formation-level line). Returns the new version.
-- The messages never repeat a refused value: it may hold what a terminal would interpret.
CREATE FUNCTION autofailover.set_formation_allow_clients(formation text, networks text[],
    client_database text DEFAULT 'all', client_role text DEFAULT 'all') RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_problem text;
    v_version bigint;
BEGIN
    PERFORM autofailover._check_formation($1);
    PERFORM autofailover._require($3, 'client_database');
    PERFORM autofailover._require($4, 'client_role');
    v_problem := autofailover._client_networks_problem($2);
    IF v_problem <> '' THEN
        RAISE EXCEPTION 'invalid client networks: %', v_problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Addresses (10.0.0.5, fd00::5) or networks (10.0.0.0/24); no host names or keywords.';
    END IF;
    v_problem := autofailover._client_database_problem($3);
    IF v_problem <> '' THEN
        RAISE EXCEPTION 'invalid client_database: %', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_problem := autofailover._client_role_problem($4);
    IF v_problem <> '' THEN
        RAISE EXCEPTION 'invalid client_role: %', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Serialized with the other formation-wide changes (exclusive formation lock).
    PERFORM autofailover._lock_formation($1);
    INSERT INTO autofailover.formation_client_access AS c (formation_id, networks, client_database, client_role)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (formation_id) DO UPDATE
            SET networks = EXCLUDED.networks, client_database = EXCLUDED.client_database,
                client_role = EXCLUDED.client_role, version = c.version + 1
        RETURNING c.version INTO v_version;
    INSERT INTO autofailover.events (formation_id, description)
        VALUES ($1, CASE WHEN cardinality($2) = 0
                         THEN 'formation client networks removed'
                         ELSE format('formation client networks set to %s (databases %s, roles %s)',
                                     array_to_string($2, ', '), $3, $4) END);
    RETURN v_version;
END $$;

-- What a keeper merges into its pg_hba.conf block: version 0 and an empty list when none was ever set.
CREATE FUNCTION autofailover.formation_client_access(formation text DEFAULT 'default')
    RETURNS TABLE (version bigint, networks text[], client_database text, client_role text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM autofailover._authorize($1, NULL);
    PERFORM autofailover._check_formation($1);
    RETURN QUERY
        SELECT coalesce(c.version, 0), coalesce(c.networks, '{}'), coalesce(c.client_database, 'all'),
               coalesce(c.client_role, 'all')
          FROM (SELECT 1) one
          LEFT JOIN autofailover.formation_client_access c ON c.formation_id = $1;
END $$;

REVOKE ALL ON TABLE autofailover.formation_client_access FROM PUBLIC;
REVOKE ALL ON FUNCTION autofailover._client_network_problem(text), autofailover._client_database_problem(text),
    autofailover._client_role_problem(text), autofailover._client_networks_problem(text[]),
    autofailover.set_formation_allow_clients(text, text[], text, text),
    autofailover.formation_client_access(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autofailover.formation_client_access(text)
    TO autofailover_node_keepers, autofailover_operator;
GRANT EXECUTE ON FUNCTION autofailover.set_formation_allow_clients(text, text[], text, text)
    TO autofailover_operator;
GRANT SELECT ON autofailover.formation_client_access TO autofailover_operator;
-- END formation client access
------------------------------------------------------------------------------
-- Every write a decision may read voids the cached answers it concerns
-- (monitor_ext/steady_answers.h). Heartbeat columns of nodes and a health check
-- that finds the same health change no decision, so they void nothing.
------------------------------------------------------------------------------
CREATE TRIGGER nodes_steady_answers AFTER INSERT OR UPDATE OR DELETE ON autofailover.nodes
    FOR EACH ROW EXECUTE FUNCTION autofailover._steady_answers_invalidate();
CREATE TRIGGER groups_steady_answers AFTER INSERT OR UPDATE OR DELETE ON autofailover.groups
    FOR EACH ROW EXECUTE FUNCTION autofailover._steady_answers_invalidate();
CREATE TRIGGER formations_steady_answers AFTER INSERT OR UPDATE OR DELETE ON autofailover.formations
    FOR EACH ROW EXECUTE FUNCTION autofailover._steady_answers_invalidate();
CREATE TRIGGER node_health_changed_steady_answers AFTER UPDATE ON autofailover.node_health
    FOR EACH ROW WHEN (OLD.health IS DISTINCT FROM NEW.health)
    EXECUTE FUNCTION autofailover._steady_answers_invalidate();
CREATE TRIGGER node_health_steady_answers AFTER INSERT OR DELETE ON autofailover.node_health
    FOR EACH ROW EXECUTE FUNCTION autofailover._steady_answers_invalidate();
CREATE TRIGGER promotion_vetoes_steady_answers AFTER INSERT OR UPDATE OR DELETE ON autofailover.promotion_vetoes
    FOR EACH ROW EXECUTE FUNCTION autofailover._steady_answers_invalidate();
CREATE TRIGGER client_access_steady_answers AFTER INSERT OR UPDATE OR DELETE
    ON autofailover.formation_client_access
    FOR EACH ROW EXECUTE FUNCTION autofailover._steady_answers_invalidate();

-- BEGIN library version check (monitor_ext/library_version.cpp): the loaded
-- library must match the installed SQL. Checked here at CREATE EXTENSION, by
-- every C function that reads or writes the tables (ERROR 55000), and by the
-- keeper and autoctl when they connect (a warning).
------------------------------------------------------------------------------
CREATE FUNCTION autofailover.library_version() RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'autofailover_library_version';

DO $$
BEGIN
    IF autofailover.library_version() <> '1.0' THEN
        RAISE EXCEPTION 'the autofailover library is version % but this script installs version 1.0',
            autofailover.library_version()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install the library built with this version, then restart the monitor.';
    END IF;
END $$;

REVOKE ALL ON FUNCTION autofailover.library_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autofailover.library_version()
    TO autofailover_keeper, autofailover_node_keepers, autofailover_operator, pg_monitor;
-- END library version check
