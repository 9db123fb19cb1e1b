// keeper.json: what the operator chose at `autoctl create postgres` plus every
// timeout the keeper uses, each a named setting with a documented default
// (docs/keeper.md). Tests shorten them by editing keeper.json.
#pragma once

#include "support/postgres_paths.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

struct KeeperTimeouts {
    // Period of the main loop (observe, report, act).
    std::chrono::milliseconds poll_period{1000};
    // Upper bound of one monitor round trip, connection included; a slower
    // monitor counts as unreachable for this loop.
    std::chrono::milliseconds monitor_call_timeout{1000};
    // Until the monitor sends its value: how long a primary that reaches neither
    // the monitor nor a standby keeps taking writes.
    std::chrono::milliseconds network_partition_timeout{1500};
    // pg_ctl start/stop -w.
    std::chrono::milliseconds postgres_start_timeout{60000};
    std::chrono::milliseconds postgres_stop_timeout{60000};
    // A crashed Postgres is restarted at most this many times within this window
    // before the keeper reports pg_is_running=false so the monitor may fail over.
    int postgres_restart_max_retries = 3;
    std::chrono::milliseconds postgres_restart_failure_timeout{5000};
    // Waiting for promotion to finish, for synchronous standbys to hold the
    // current LSN, for a fast-forward to reach its target, for a walreceiver to stop.
    std::chrono::milliseconds promote_timeout{30000};
    std::chrono::milliseconds sync_rep_wait_timeout{30000};
    std::chrono::milliseconds fast_forward_timeout{30000};
    std::chrono::milliseconds stop_replication_timeout{5000};
    // pg_basebackup and pg_rewind run at most this long.
    std::chrono::milliseconds base_backup_timeout{3600000};
    std::chrono::milliseconds rewind_timeout{600000};
    // After pg_rewind, the standby must stream from the primary within this long,
    // else it is re-initialized from a fresh base backup (docs/keeper.md).
    std::chrono::milliseconds rejoin_stream_timeout{30000};
    // HTTP endpoint: socket read/write timeout of one request, and how old the loop's
    // last observation may be before /liveness (and every role check) answers 503.
    std::chrono::milliseconds http_io_timeout{2000};
    std::chrono::milliseconds http_liveness_timeout{5000};
    // While this node is the elected candidate (prepare_promotion, stop_replication) it asks the
    // monitor this often, so the promotion follows the end of the old primary's fencing wait
    // without waiting out a whole poll_period (issue #12).
    std::chrono::milliseconds election_poll_period{100};
    // A standby started by the keeper reports once its walreceiver streams, waiting at most this
    // long: the monitor makes it a secondary only when the primary's report shows it streaming,
    // and the primary reports at once when the standby's state changes (docs/keeper.md).
    std::chrono::milliseconds standby_stream_wait{1000};
    // How often the keeper looks at its own Postgres while an action waits for it (a walreceiver
    // to stream or stop, a promotion to end): local queries, so short.
    std::chrono::milliseconds local_check_interval{20};
};

struct KeeperConfig {
    // The monitor's address (host, port, database, TLS); never a password.
    std::string monitor_uri;
    // This node's own monitor role (autofailover_keeper_<id>) and the pgpass file
    // (0600, in the state dir) with its password, both from register_node.
    // "" (a config written before registration): the URI's user.
    std::string monitor_user;
    std::string monitor_passfile;
    std::string formation = "default";
    std::string name;  // as registered (the monitor may have chosen it)
    std::string hostname;
    int port = 5432;
    std::string pgdata;
    std::string pg_bindir = support::default_pg_bindir();
    // pg_hba method of the keeper's lines (replication, probe): scram-sha-256 or trust.
    std::string auth_method = "scram-sha-256";
    // pgpass file (0600) holding autofailover_replicator's password, used through
    // passfile= by primary_conninfo, pg_basebackup and pg_rewind; "" = no password.
    std::string replication_passfile;
    // This node's certificate and key; "" = SSL off. Outside PGDATA so a base backup
    // never replaces them with the primary's.
    std::string ssl_cert_file;
    std::string ssl_key_file;
    // The CA that signed every node's certificate (--ssl-ca-file): replication then
    // verifies the peer (sslmode=verify-full). "" = self-signed (sslmode=require).
    std::string ssl_ca_file;
    std::string socket_dir = "/tmp";    // unix_socket_directories of the local Postgres
    std::string max_backup_rate;        // pg_basebackup --max-rate, empty = unlimited
    bool stop_postgres_on_exit = true;  // SIGTERM/SIGINT also stop Postgres (autoctl stop)
    // initdb / pg_basebackup fsync the new data directory (seconds on a slow disk).
    // false only for throw-away test and demo clusters: a power loss could corrupt them.
    bool sync_new_data_directories = true;
    // wal_keep_size of the local Postgres (all nodes): WAL kept for a node that
    // rejoins without a slot holding it (docs/keeper.md, "WAL retention").
    std::string wal_keep_size = "512MB";
    // max_slot_wal_keep_size of the local Postgres: the most WAL a slot may hold for a
    // node that is away, so that a node which never returns cannot fill the primary's
    // disk. A node away longer finds its WAL gone and is rebuilt from a base backup.
    // "-1": no limit.
    std::string max_slot_wal_keep_size = "10GB";
    // Application access (docs/clients.md): the networks (addresses or CIDRs, checked by
    // client_network_problem) from which client_role may reach client_database, with
    // auth_method, over TLS when the node runs with SSL. The same on every node of a
    // group, so a failover changes nothing for clients. Empty: no application line.
    std::vector<std::string> allow_clients;
    std::string client_database = "all";  // comma list: all or names (never replication)
    std::string client_role = "all";      // comma list: all, names or +group (never autofailover_*)
    // true: the keeper never writes pg_hba.conf; the DBA provides every line, the
    // keeper's replication and probe lines included.
    bool skip_pg_hba = false;
    // Read-only HTTP health endpoint (docs/operations.md): 0 = off (default).
    int http_port = 0;
    // Listen address. Loopback by default: the endpoint has no authentication, so
    // exposing it to the network is the operator's explicit choice.
    std::string http_listen = "127.0.0.1";
    int http_threads = 4;     // worker threads (the most concurrent requests)
    // keeper.json "hooks" (docs/operations.md): absolute paths of programs run with
    // AUTOFAILOVER_* environment variables; "" = none. Each is killed at timeout_ms.
    struct Hooks {
        std::string on_start;
        std::string on_stop;
        std::string on_role_change;
        std::string on_fence;
        // Run by the keeper loop itself, bounded by timeout, before this node reports
        // that it is ready to be promoted; a non-zero exit or a timeout vetoes.
        std::string pre_promote;
        std::chrono::milliseconds timeout{10000};
        bool any() const { return !on_start.empty() || !on_stop.empty() || !on_role_change.empty() || !on_fence.empty(); }
    } hooks;
    KeeperTimeouts timeouts;
    // keeper.json "backup" (docs/backups.md): pgBackRest integration, off when tool is "".
    // The keeper then manages archive_mode/archive_command/restore_command on every node,
    // builds standbys from the latest backup (pg_basebackup as fallback) and runs pg_rewind
    // with --restore-target-wal. stanza and config reach command lines and archive_command:
    // both are checked by backup_setting_problem().
    struct Backup {
        std::string tool;                    // "" (off) or "pgbackrest"
        std::string stanza;                  // pgBackRest stanza of the formation
        std::string config;                  // absolute path of the pgbackrest.conf to use
        std::string command = "/usr/bin/pgbackrest";
        bool enabled() const { return !tool.empty(); }
    } backup;
};

inline bool ssl_enabled(const KeeperConfig& config) { return !config.ssl_key_file.empty(); }

// Both throw std::runtime_error naming the offending key. config_from_json checks
// every value's type and range (ports, counts, timeouts, names, host names, paths)
// before anything uses it: keeper.json is hand-editable.
std::string config_to_json(const KeeperConfig& config);
KeeperConfig config_from_json(const std::string& text);

// Why `path` must not be a data directory or another path the keeper hands to
// Postgres, libpq and pg_ctl (whose /bin/sh interprets ", `, $ and \), or nullopt
// when it is fine: absolute, at most 1024 bytes, none of those characters and no
// control character (a newline would end a line of postgresql.conf).
std::optional<std::string> unsafe_path_reason(const std::string& path);

// Why `host` is neither a host name (letters, digits, '-', dot-separated labels of
// 1..63, at most 253 characters) nor an IPv4/IPv6 address literal, or nullopt.
// The pg_hba keywords all, samehost and samenet are refused too: the keeper writes
// group hosts into pg_hba.conf.
std::optional<std::string> invalid_hostname_reason(const std::string& host);

// Why a value of keeper.json "backup" (key: tool, stanza, config, command)
// is refused, or nullopt. stanza: 1-64 letters, digits, '_' or '-'; config and command:
// absolute paths of letters, digits and _ . / + - only (they reach archive_command,
// which Postgres runs through /bin/sh).
std::optional<std::string> backup_setting_problem(const std::string& key, const std::string& value);

}  // namespace autofailover::keeper
