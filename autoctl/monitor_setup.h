// `autoctl create monitor`: a PostgreSQL 15 instance that runs the autofailover
// extension, reachable by keepers and operators from loopback, the given host
// and the --allow networks, with the chosen authentication (and TLS).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace autoctl {

// "10.0.0.0/24" or "fd00::/64" in canonical form; a bare address gets /32 or
// /128. Throws CliError(BadArguments) for anything else.
std::string parse_allowed_network(const std::string& text);

struct MonitorSetup {
    std::string pgdata;
    int pgport = 5432;
    std::string hostname;
    std::string auth = "scram-sha-256"; // scram-sha-256 | trust (only when asked for)
    bool ssl = true;                    // false: --no-ssl
    // --ssl-ca-file, --server-cert, --server-key: a certificate signed by the
    // operator's CA (all three), copied into the data directory; URIs then say
    // sslmode=verify-full. Empty: a self-signed certificate (sslmode=require).
    std::string ssl_ca_file;
    std::string server_cert;
    std::string server_key;
    // --allow: networks (CIDR) keepers and operators may come from, besides
    // loopback and the addresses of `hostname`, which are always allowed.
    std::vector<std::string> allow;
    std::vector<std::string> settings; // "name=value": autofailover.<name> GUC overrides
    std::string pg_bindir;             // initdb, pg_ctl, postgres
    // How long pg_ctl may wait for the server to accept connections.
    std::chrono::seconds start_timeout{60};
    // One of several replicated monitors (create monitor --etcd, docs/monitor-ha.md):
    // leader lease required, wal_log_hints for pg_rewind, replication lines in pg_hba.
    bool replicated = false;
};

struct MonitorUris {
    std::string keeper;    // postgres://autofailover_keeper@H:N/autofailover?sslmode=... (no password)
    // The keeper role's password (0600) for `create postgres --monitor-password-file`; "" with trust.
    std::string keeper_password_file;
    std::string operator_; // what autoctl show/perform/... use: the OS user over the Unix socket (peer)
    std::vector<std::string> trusted_sources;  // networks the pg_hba lines admit from (for the trust warning)
};

// The current OS user's name (the monitor's superuser and operator role).
std::string os_user_name();

// Idempotent: an existing monitor data directory is reused, started if it is
// stopped, and its database, extension and roles are completed.
MonitorUris create_monitor(const MonitorSetup& setup);

// Blocks until SIGINT/SIGTERM (then stops the monitor with pg_ctl -m fast) or
// until the postmaster exits on its own.
int run_monitor_in_foreground(const MonitorSetup& setup);

// Where pg_ctl writes the server log: next to the data directory.
std::string monitor_log_path(const std::string& pgdata);

// Pieces of create_monitor, also used by the monitor agent (monitor_agent.cpp),
// which rewrites a monitor's own files after a base backup or pg_rewind.
void write_monitor_files(const MonitorSetup& setup);
bool monitor_server_running(const MonitorSetup& setup);
void start_monitor_server(const MonitorSetup& setup);
std::string monitor_program(const MonitorSetup& setup, const char* program);  // pg_bindir/program
std::string monitor_os_user();
// Where the server puts its Unix socket: the data directory, or <pgdata>.monitor for a replicated monitor.
std::string monitor_socket_dir(const MonitorSetup& setup);
// The URIs of a monitor (the keeper password stays in its 0600 file).
MonitorUris monitor_uris(const MonitorSetup& setup);

}  // namespace autoctl
