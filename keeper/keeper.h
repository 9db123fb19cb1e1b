// The keeper's public API, used by the autofailover-keeper binary and by
// `autoctl create postgres | run | stop | status`. Everything else under
// keeper/ is an implementation detail.
//
// Errors are thrown as KeeperError; its kind() maps onto the CLI exit codes
// (docs/architecture.md): MonitorError → 2, LocalPostgres → 4, BadArguments → 1.
#pragma once

#include "support/postgres_paths.h"

#include "support/error.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace autofailover::keeper {

// A support::Error (the one error type of keeper and autoctl, with its exit code) that also says which
// side failed in the keeper's words.
class KeeperError : public support::Error {
public:
    enum class Kind { BadArguments, MonitorError, LocalPostgres };
    KeeperError(Kind kind, const std::string& message) : support::Error(exit_code_of(kind), message), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    static support::ExitCode exit_code_of(Kind kind) {
        return kind == Kind::BadArguments   ? support::ExitCode::BadArguments
               : kind == Kind::MonitorError ? support::ExitCode::MonitorError
                                            : support::ExitCode::LocalPostgresError;
    }
    Kind kind_;
};

struct CreateNodeOptions {
    std::string pgdata;                 // required, absolute or relative (made absolute)
    std::string state_dir;              // empty: default_state_dir(pgdata)
    std::string monitor_uri;            // required: postgres://autofailover_keeper@host:port/autofailover
    std::string hostname;               // required: how the monitor and the other nodes reach this node
    int port = 5432;                    // Postgres port of this node
    std::string name;                   // empty: the monitor names it node_<id>
    std::string formation = "default";
    std::optional<int> group;           // empty: the monitor decides (0)
    int candidate_priority = 50;
    bool replication_quorum = true;
    // Method of the pg_hba lines the keeper writes and of initdb's loopback lines
    // (--auth-host). "trust" only when the operator asks for it.
    std::string auth_method = "scram-sha-256";
    // First line: autofailover_replicator's password, the same for every node of the
    // formation; required unless auth_method is trust. Copied to <state dir>/replication.pgpass.
    std::string replication_password_file;
    // First line: autofailover_keeper's password on the monitor (autoctl create monitor
    // writes it to <monitor pgdata>/autofailover_keeper.password). Copied to
    // <state dir>/monitor.pgpass; empty when the monitor URI needs none (or holds it).
    std::string monitor_password_file;
    // TLS: ssl=on with hostssl pg_hba lines, replication over TLS. With none of the three
    // files below the node gets a self-signed certificate (encrypted, not authenticated);
    // with all three, a certificate signed by the operator's CA, and replication verifies
    // the peer (sslmode=verify-full). false: --no-ssl.
    bool ssl = true;
    std::string ssl_ca_file;  // --ssl-ca-file: the CA that signed every node's certificate
    std::string server_cert;  // --server-cert: this node's certificate (CN or SAN = --hostname)
    std::string server_key;   // --server-key: its key
    std::string pg_bindir = support::default_pg_bindir();
    // --allow-clients / --client-database / --client-role / --skip-pg-hba: application
    // access written by the keeper (keeper.json, docs/clients.md).
    std::vector<std::string> allow_clients;
    std::string client_database = "all";
    std::string client_role = "all";
    bool skip_pg_hba = false;
    int http_port = 0;  // keeper HTTP endpoint, 0 = off
    std::string http_listen = "127.0.0.1";  // its listen address
    // Run the first transition now (initdb + start for the first node, pg_basebackup
    // for a later one once the primary allows it), waiting at most init_timeout.
    // When false, `run_keeper` does it on its first loops.
    bool initialize_now = true;
    std::chrono::milliseconds init_timeout{std::chrono::minutes(5)};
    // --backup pgbackrest --backup-stanza S --backup-config FILE (docs/backups.md): keeper.json
    // "backup". Empty tool: no backup integration.
    std::string backup_tool;
    std::string backup_stanza;
    std::string backup_config;
};

struct CreatedNode {
    std::int64_t node_id = 0;
    std::string name;
    int group_id = 0;
    std::string state;       // reported state after creation (e.g. "single", "wait_standby", "catchingup")
    std::string goal_state;  // last goal from the monitor
    std::string state_dir;
};

// Registers the node with the monitor (register_node), writes keeper.json and
// state.json to the state dir, then (initialize_now) runs the keeper loop until
// the node reached its first stable state (single / catchingup / secondary) or
// init_timeout. Refuses to run as root. Refuses when the state dir already
// holds a registration for another monitor/formation; when it holds the same
// registration it is a no-op returning the stored node (idempotent re-run).
CreatedNode create_postgres_node(const CreateNodeOptions& options);

// The poll loop in the foreground until SIGTERM/SIGINT (installs its own
// handlers; SIGHUP reloads keeper.json). Writes keeper.pid; refuses to start
// when another live keeper holds it. Returns the process exit code:
// 0 stopped by a signal, 1 bad config, 2 never reached the monitor at start
// and has no state, 121 the node was dropped, 4 local Postgres unusable.
// On SIGTERM/SIGINT the keeper stops Postgres (`pg_ctl stop -m fast`, after a
// CHECKPOINT) and exits, as `autoctl stop` promises (docs/architecture.md);
// keeper.json "stop_postgres_on_exit": false keeps Postgres running instead.
// A keeper killed with SIGKILL leaves Postgres running (it is not our child).
int run_keeper(const std::string& pgdata, const std::string& state_dir = "");

// SIGTERM to the keeper named in keeper.pid and wait up to `wait` for it to
// exit (it stops Postgres itself, see run_keeper). Returns true when no keeper
// runs any more (also when none was running).
bool stop_keeper(const std::string& pgdata, const std::string& state_dir = "",
                 std::chrono::milliseconds wait = std::chrono::seconds(30));

struct KeeperStatus {
    bool keeper_running = false;
    std::optional<long> keeper_pid;
    bool postgres_running = false;
    std::optional<std::int64_t> node_id;
    std::string name;
    std::string formation;
    int group_id = 0;
    std::string current_state;  // from state.json, empty when never registered
    std::string goal_state;
    std::string monitor_uri_redacted;
    std::optional<double> seconds_since_monitor_contact;
    std::string state_dir;
};

// Reads keeper.json / state.json / keeper.pid / postmaster.pid; never contacts the monitor.
KeeperStatus keeper_status(const std::string& pgdata, const std::string& state_dir = "");

// What a node's keeper.json says about applications (autoctl show uri, set node allow-clients).
struct ClientAccess {
    std::vector<std::string> allow_clients;
    std::string client_database;
    std::string client_role;
    bool skip_pg_hba = false;
    std::string auth_method;
    bool ssl = false;
    std::string ssl_ca_file;                 // "" = self-signed or no TLS
    std::vector<std::string> hba_lines;      // the client lines the keeper writes
    bool hba_applied = false;                // pg_hba.conf holds exactly these client lines now
    // autoctl set formation allow-clients, as this node's keeper last fetched it from the monitor.
    std::vector<std::string> formation_allow_clients;
    std::string formation_client_database;
    std::string formation_client_role;
    std::int64_t formation_version = 0;
};
ClientAccess client_access(const std::string& pgdata, const std::string& state_dir = "");

// `autoctl set node allow-clients`: replaces the client access keys of the node's
// keeper.json (checked like any load, then written atomically) and sends the running
// keeper SIGHUP, which rewrites pg_hba.conf and reloads Postgres within a poll period.
// Returns the running keeper's pid, or nullopt when none runs (it applies them at start).
std::optional<long> set_client_access(const std::string& pgdata, const std::string& state_dir,
                                      const std::vector<std::string>& allow_clients,
                                      const std::optional<std::string>& client_database,
                                      const std::optional<std::string>& client_role);

// pgBackRest (docs/backups.md), for `autoctl perform backup` and `autoctl show backups`.
// The nodes are this host's, named by their data directories (their keeper.json say
// stanza, config file, port and socket). pgBackRest needs the primary for every
// backup (start/stop backup); with from="standby" (the default) the files are copied
// from a streaming standby (--backup-standby), else from the primary.
struct BackupRequest {
    std::vector<std::string> pgdatas;
    std::string from = "standby";  // standby or primary
    std::string type = "full";     // full, diff or incr
    std::chrono::milliseconds timeout{std::chrono::hours(6)};
};
struct BackupOutcome {
    std::string primary;      // node names
    std::string copied_from;  // the node whose files were copied
    std::string label;        // the new backup's label
    std::string note;         // why the primary was used although a standby was asked for
    double seconds = 0;
};
BackupOutcome perform_backup(const BackupRequest& request);

}  // namespace autofailover::keeper
