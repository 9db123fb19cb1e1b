// autoctl create monitor | postgres
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "support/postgres_paths.h"
#include "autoctl/etcd_client.h"
#include "autoctl/monitor_agent.h"
#include "autoctl/monitor_setup.h"

#include "keeper/keeper.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>

namespace autoctl {

namespace {

namespace keeper = autofailover::keeper;

// TLS is on by default (a self-signed certificate); the operator's CA instead, or --no-ssl.
void add_tls_options(CLI::App* cmd, bool& no_ssl, std::string& ca_file, std::string& cert, std::string& key,
                     const std::string& what) {
    auto* off = cmd->add_flag("--no-ssl", no_ssl, "Plain TCP, no TLS (not the default)");
    auto* self_signed = cmd->add_flag("--ssl-self-signed", "A self-signed certificate: encrypted, not "
                                                           "authenticated (the default)")
                            ->excludes(off);
    auto* ca = cmd->add_option("--ssl-ca-file", ca_file, "Your CA's certificate (PEM), with --server-cert and "
                                                         "--server-key: " + what)
                   ->excludes(off)
                   ->excludes(self_signed);
    auto* c = cmd->add_option("--server-cert", cert, "Certificate (PEM) signed by --ssl-ca-file")->excludes(off);
    auto* k = cmd->add_option("--server-key", key, "Key of --server-cert (PEM, mode 0600)")->excludes(off);
    ca->needs(c)->needs(k);
    c->needs(ca);
    k->needs(ca);
}

struct CreateMonitorOptions {
    MonitorSetup setup;
    bool no_ssl = false;
    int start_timeout_seconds = 60;
    bool run = false;
    // Replicated monitors (docs/monitor-ha.md); empty etcd: a single monitor, as before.
    std::string etcd;
    std::string standby_of;
    MonitorHaConfig ha;
};

struct CreatePostgresOptions {
    keeper::CreateNodeOptions node;
    bool no_ssl = false;  // CreateNodeOptions::ssl is its negation
    int group = -1;
    std::string replication_quorum = "true";
    int init_timeout_seconds = 300;
    bool run = false;
};

void add_create_monitor(CLI::App* create) {
    auto o = std::make_shared<CreateMonitorOptions>();
    o->setup.pg_bindir = autofailover::support::default_pg_bindir();
    CLI::App* cmd = create->add_subcommand(
        "monitor", "Create (or complete and start) a monitor: initdb, config, pg_hba, CREATE EXTENSION autofailover");
    cmd->add_option("--pgdata", o->setup.pgdata, "Data directory of the monitor")->required()->envname("PGDATA");
    cmd->add_option("--pgport", o->setup.pgport, "Port")->required()->check(CLI::Range(1, 65535));
    cmd->add_option("--hostname", o->setup.hostname, "Address keepers and operators use to reach the monitor")
        ->required();
    cmd->add_option("--auth", o->setup.auth,
                    "Authentication of keepers and operators in pg_hba.conf; trust lets anyone who reaches the "
                    "port log in as the keeper role and as your OS user's superuser role")
        ->capture_default_str()
        ->check(CLI::IsMember({"trust", "scram-sha-256"}));
    add_tls_options(cmd, o->no_ssl, o->setup.ssl_ca_file, o->setup.server_cert, o->setup.server_key,
                    "the monitor's certificate; the printed URIs then say sslmode=verify-full");
    cmd->add_option("--allow", o->setup.allow,
                    "CIDR network keepers and operators may connect from, besides loopback and --hostname; "
                    "repeatable")
        ->take_all();
    cmd->add_option("--setting", o->setup.settings,
                    "name=value: an autofailover.<name> GUC (a timeout in ms, ...); repeatable")
        ->take_all();
    cmd->add_option("--start-timeout", o->start_timeout_seconds, "Seconds pg_ctl waits for the server to start")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--run", o->run, "Stay in the foreground; SIGTERM/SIGINT stop the monitor");
    // Replicated monitors: docs/monitor-ha.md.
    o->ha.cluster = "main";
    auto* etcd = cmd->add_option("--etcd", o->etcd,
                                 "Replicated monitors: etcd endpoints http://host:port[,...] (leadership in etcd)");
    cmd->add_option("--monitor-cluster", o->ha.cluster, "With --etcd: the monitors' cluster name in etcd")
        ->capture_default_str()
        ->needs(etcd);
    cmd->add_option("--name", o->ha.name, "With --etcd: this monitor's name (default monitor_<pgport>)")->needs(etcd);
    cmd->add_option("--standby-of", o->standby_of,
                    "With --etcd: 'host=H port=P' of the leader monitor; this one starts as its standby")
        ->needs(etcd);
    cmd->add_option("--lease-ttl", o->ha.timeouts.lease_ttl_ms, "With --etcd: etcd lease TTL in ms (whole seconds)")
        ->capture_default_str()
        ->needs(etcd);
    cmd->add_option("--renew-period", o->ha.timeouts.renew_period_ms, "With --etcd: agent round in ms")
        ->capture_default_str()
        ->needs(etcd);
    cmd->add_option("--lease-margin", o->ha.timeouts.lease_margin_ms,
                    "With --etcd: the Postgres lease ends this many ms before etcd's")
        ->capture_default_str()
        ->needs(etcd);
    cmd->callback([o] {
        o->setup.start_timeout = std::chrono::seconds(o->start_timeout_seconds);
        o->setup.ssl = !o->no_ssl;
        MonitorUris uris;
        if (o->etcd.empty()) {
            uris = create_monitor(o->setup);
        } else {
            try {
                o->ha.etcd = etcd::parse_endpoints(o->etcd);
            } catch (const etcd::EtcdError& e) {
                throw CliError(ExitCode::BadArguments, fmt::format("--etcd: {}", e.what()));
            }
            if (o->ha.name.empty()) o->ha.name = fmt::format("monitor_{}", o->setup.pgport);
            o->ha.setup = o->setup;
            uris = create_replicated_monitor(o->ha, o->standby_of);
            o->setup = o->ha.setup;
            std::cerr << fmt::format("autoctl: start its agent with: autoctl run-monitor --pgdata {}\n", o->setup.pgdata);
        }
        if (o->setup.auth == "trust")
            std::cerr << fmt::format(
                "autoctl: WARNING: --auth trust: anyone who can reach {}:{} from {} logs in without a password "
                "as autofailover_keeper and as {}, a superuser who can run programs as this OS user; that is every "
                "local OS user, and every host of those networks. Leave --auth out (scram-sha-256) unless this "
                "machine and network are yours alone.\n",
                o->setup.hostname, o->setup.pgport, fmt::join(uris.trusted_sources, ", "), os_user_name());
        std::cerr << "autoctl: monitor ready.\n";
        if (uris.keeper_password_file.empty())
            std::cerr << fmt::format("  keepers:   autoctl create postgres --monitor '{}' ...\n", uris.keeper);
        else
            std::cerr << fmt::format(
                "  keepers:   autoctl create postgres --monitor '{}' --monitor-password-file {} ...\n"
                "             (copy that file, mode 0600, to each data node's host)\n",
                uris.keeper, uris.keeper_password_file);
        std::cerr << fmt::format("  operators: export AUTOFAILOVER_MONITOR='{}'\n", uris.operator_);
        // stdout carries only the keeper URI, for scripts.
        std::cout << uris.keeper << std::endl;
        if (o->run) {
            int status = o->etcd.empty() ? run_monitor_in_foreground(o->setup) : run_monitor_agent(o->setup.pgdata);
            if (status != 0) throw ExitWith(status);
        }
    });
}

// Application access (docs/clients.md): lines the keeper writes into pg_hba.conf.
void add_client_access_options(CLI::App* cmd, keeper::CreateNodeOptions& node) {
    cmd->add_option("--allow-clients", node.allow_clients,
                    "Network (CIDR) or address from which applications may connect (repeatable); the keeper "
                    "writes pg_hba lines with --auth (hostssl scram-sha-256 by default). Give every node of the "
                    "group the same list");
    cmd->add_option("--client-database", node.client_database,
                    "Databases those lines admit: all, or names separated by commas (never replication)")
        ->capture_default_str();
    cmd->add_option("--client-role", node.client_role,
                    "Roles those lines admit: all, names or +group, separated by commas (only roles with a "
                    "password get in with scram-sha-256)")
        ->capture_default_str();
    cmd->add_flag("--skip-pg-hba", node.skip_pg_hba,
                  "The keeper never writes pg_hba.conf: you write every line, the replication role's from the "
                  "group's hosts and the probe role's from the monitor included");
}

void warn_about_client_access(const keeper::CreateNodeOptions& node) {
    if (node.skip_pg_hba && !node.allow_clients.empty())
        throw CliError(ExitCode::BadArguments, "--allow-clients needs the keeper to write pg_hba.conf: drop --skip-pg-hba");
    if (node.auth_method == "trust" && !node.allow_clients.empty())
        std::cerr << "autoctl: WARNING: --auth trust with --allow-clients: every host of those networks logs in "
                     "without a password as any admitted role.\n";
    for (const auto& network : node.allow_clients)
        if (network == "0.0.0.0/0" || network == "::/0")
            std::cerr << fmt::format("autoctl: WARNING: --allow-clients {} admits every address; only a password "
                                     "stands between the internet and the admitted roles.\n", network);
}

// pgBackRest integration (docs/backups.md): keeper.json "backup"; values checked by the keeper.
void add_backup_options(CLI::App* cmd, keeper::CreateNodeOptions& node) {
    auto* tool = cmd->add_option("--backup", node.backup_tool,
                                 "pgbackrest: the keeper manages WAL archiving and restore_command, builds standbys "
                                 "from the latest backup and rewinds with --restore-target-wal (docs/backups.md)")
                     ->check(CLI::IsMember({"pgbackrest"}));
    cmd->add_option("--backup-stanza", node.backup_stanza, "With --backup: the formation's pgBackRest stanza")
        ->needs(tool);
    cmd->add_option("--backup-config", node.backup_config,
                    "With --backup: absolute path of the pgbackrest.conf to use (repo1-path, log-path, spool-path)")
        ->needs(tool);
}

void add_create_postgres(CLI::App* create) {
    auto o = std::make_shared<CreatePostgresOptions>();
    CLI::App* cmd = create->add_subcommand(
        "postgres", "Register a data node with the monitor and initialize it (initdb as first node, else base backup)");
    cmd->add_option("--pgdata", o->node.pgdata, "Data directory of the node")->required()->envname("PGDATA");
    cmd->add_option("--pgport", o->node.port, "Postgres port")->required()->check(CLI::Range(1, 65535));
    cmd->add_option("--hostname", o->node.hostname, "Address the monitor and the other nodes use to reach this node")
        ->required();
    cmd->add_option("--monitor", o->node.monitor_uri, "Monitor URI printed by `autoctl create monitor`")->required();
    cmd->add_option("--name", o->node.name, "Node name (default: node_<id>, chosen by the monitor)");
    cmd->add_option("--formation", o->node.formation, "Formation")->capture_default_str();
    cmd->add_option("--group", o->group, "Group id (default: chosen by the monitor)");
    cmd->add_option("--candidate-priority", o->node.candidate_priority, "0..100, 0 = never promoted")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
    cmd->add_option("--replication-quorum", o->replication_quorum,
                    "true: counts for synchronous replication; false: async, never promoted")
        ->capture_default_str()
        ->check(CLI::IsMember({"true", "false"}));
    cmd->add_option("--auth", o->node.auth_method,
                    "Method of the pg_hba lines the keeper writes and of initdb's loopback lines; trust lets "
                    "anyone who reaches the port log in as any role, the superuser included")
        ->capture_default_str()
        ->check(CLI::IsMember({"trust", "scram-sha-256"}));
    cmd->add_option("--replication-password-file", o->node.replication_password_file,
                    "File (mode 0600) whose first line is the replication password, the same on every node; "
                    "required with --auth scram-sha-256")
        ->envname("AUTOFAILOVER_REPLICATION_PASSWORD_FILE");
    cmd->add_option("--monitor-password-file", o->node.monitor_password_file,
                    "File (mode 0600) whose first line is autofailover_keeper's password on the monitor "
                    "(autoctl create monitor wrote it and says where)")
        ->envname("AUTOFAILOVER_MONITOR_PASSWORD_FILE");
    add_tls_options(cmd, o->no_ssl, o->node.ssl_ca_file, o->node.server_cert, o->node.server_key,
                    "this node's certificate; replication verifies the peer (verify-full)");
    cmd->add_option("--http-port", o->node.http_port,
                    "Port of the keeper's read-only HTTP health endpoint (0 = off, the default)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--http-listen", o->node.http_listen,
                    "Address the HTTP endpoint listens on (default 127.0.0.1; give this node's address "
                    "for a load balancer on another host)")
        ->capture_default_str();
    cmd->add_option("--state-dir", o->node.state_dir, "Keeper state directory (default: <pgdata>.keeper)");
    add_client_access_options(cmd, o->node);
    cmd->add_option("--init-timeout", o->init_timeout_seconds,
                    "Seconds to wait for the node's first stable state (single, catchingup, secondary)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--run", o->run, "Then run the keeper in the foreground (like autoctl run)");
    add_backup_options(cmd, o->node);
    cmd->callback([o] {
        o->node.pg_bindir = autofailover::support::default_pg_bindir();
        o->node.ssl = !o->no_ssl;
        if (o->node.auth_method == "trust")
            std::cerr << fmt::format(
                "autoctl: WARNING: --auth trust: anyone who can reach port {} over TCP logs in without a password: "
                "every local OS user as any role, the superuser {} included (initdb's loopback lines), and the "
                "group's hosts and the monitor's host as autofailover_replicator, who can copy all the data. "
                "Leave --auth out (scram-sha-256) unless this machine and network are yours alone.\n",
                o->node.port, os_user_name());
        warn_about_client_access(o->node);
        if (o->group >= 0) o->node.group = o->group;
        o->node.replication_quorum = o->replication_quorum == "true";
        o->node.init_timeout = std::chrono::seconds(o->init_timeout_seconds);
        try {
            keeper::CreatedNode node = keeper::create_postgres_node(o->node);
            std::cout << fmt::format("{} (id {}, group {}) registered: state {}, goal {}\n", node.name, node.node_id,
                                     node.group_id, node.state, node.goal_state);
            if (!o->run) {
                std::cout << fmt::format("Start its keeper with: autoctl run --pgdata {}\n", o->node.pgdata);
                return;
            }
            int status = keeper::run_keeper(o->node.pgdata, o->node.state_dir);
            if (status != 0) throw ExitWith(status);
        } catch (const keeper::KeeperError& e) {
            throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
        }
    });
}

}  // namespace

void add_create_commands(CLI::App& app) {
    CLI::App* create = app.add_subcommand("create", "Create a monitor or a data node");
    create->require_subcommand(1);
    add_create_monitor(create);
    add_create_postgres(create);
}

}  // namespace autoctl
