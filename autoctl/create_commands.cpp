// autoctl create monitor | postgres
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "autoctl/monitor_setup.h"

#include "keeper/keeper.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace autoctl {

namespace {

namespace keeper = autofailover::keeper;

struct CreateMonitorOptions {
    MonitorSetup setup;
    bool no_ssl = false;
    int start_timeout_seconds = 60;
    bool run = false;
};

struct CreatePostgresOptions {
    keeper::CreateNodeOptions node;
    bool no_ssl = false;
    int group = -1;
    std::string replication_quorum = "true";
    int init_timeout_seconds = 300;
    bool run = false;
};

void add_create_monitor(CLI::App* create) {
    auto o = std::make_shared<CreateMonitorOptions>();
    o->setup.pg_bindir = AUTOFAILOVER_PG_BINDIR;
    CLI::App* cmd = create->add_subcommand(
        "monitor", "Create (or complete and start) a monitor: initdb, config, pg_hba, CREATE EXTENSION autofailover");
    cmd->add_option("--pgdata", o->setup.pgdata, "Data directory of the monitor")->required()->envname("PGDATA");
    cmd->add_option("--pgport", o->setup.pgport, "Port")->required()->check(CLI::Range(1, 65535));
    cmd->add_option("--hostname", o->setup.hostname, "Address keepers and operators use to reach the monitor")
        ->required();
    cmd->add_option("--auth", o->setup.auth, "Authentication of keepers and operators in pg_hba.conf")
        ->capture_default_str()
        ->check(CLI::IsMember({"trust", "scram-sha-256"}));
    auto* no_ssl = cmd->add_flag("--no-ssl", o->no_ssl, "Plain connections (the default)");
    cmd->add_flag("--ssl-self-signed", o->setup.ssl_self_signed,
                  "Create a self-signed certificate; the printed URI then says sslmode=require")
        ->excludes(no_ssl);
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
    cmd->callback([o] {
        o->setup.start_timeout = std::chrono::seconds(o->start_timeout_seconds);
        MonitorUris uris = create_monitor(o->setup);
        std::cerr << fmt::format(
            "autoctl: monitor ready.\n"
            "  keepers:   autoctl create postgres --monitor '{}' ...\n"
            "  operators: export AUTOFAILOVER_MONITOR='{}'\n",
            uris.keeper, uris.operator_);
        // stdout carries only the keeper URI, for scripts.
        std::cout << uris.keeper << std::endl;
        if (o->run) {
            int status = run_monitor_in_foreground(o->setup);
            if (status != 0) throw ExitWith(status);
        }
    });
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
    cmd->add_option("--auth", o->node.auth_method, "Method of the pg_hba lines the keeper writes")
        ->capture_default_str()
        ->check(CLI::IsMember({"trust", "scram-sha-256"}));
    cmd->add_option("--replication-password-file", o->node.replication_password_file,
                    "File (mode 0600) whose first line is the replication password, the same on every node; "
                    "required with --auth scram-sha-256")
        ->envname("AUTOFAILOVER_REPLICATION_PASSWORD_FILE");
    auto* no_ssl = cmd->add_flag("--no-ssl", o->no_ssl, "Plain connections (the default)");
    cmd->add_flag("--ssl-self-signed", o->node.ssl_self_signed,
                  "Create a self-signed certificate for this node; ssl=on, replication and probes over TLS")
        ->excludes(no_ssl);
    cmd->add_option("--http-port", o->node.http_port,
                    "Port of the keeper's read-only HTTP health endpoint (on --hostname; 0 = off, the default)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--state-dir", o->node.state_dir, "Keeper state directory (default: <pgdata>.keeper)");
    cmd->add_option("--init-timeout", o->init_timeout_seconds,
                    "Seconds to wait for the node's first stable state (single, catchingup, secondary)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--run", o->run, "Then run the keeper in the foreground (like autoctl run)");
    cmd->callback([o] {
        o->node.pg_bindir = AUTOFAILOVER_PG_BINDIR;
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
