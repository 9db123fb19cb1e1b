// autoctl set node candidate-priority | replication-quorum, set formation number-sync-standbys
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "autoctl/monitor_client.h"
#include "autoctl/monitor_target.h"
#include "autoctl/wait_for_health.h"
#include "keeper/keeper.h"
#include "libautofailover/input_validation.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

namespace autoctl {

namespace {

constexpr int kDefaultWaitSeconds = 60;

struct SetOptions {
    MonitorTarget target;
    std::string name;
    int wait_seconds = kDefaultWaitSeconds;
    int number = 0;
    bool flag = false;
};

void report(bool changed, const std::string& what) {
    std::cout << (changed ? fmt::format("{} set\n", what) : fmt::format("{} already set; nothing to do\n", what));
}

struct ClientAccessOptions {
    std::string pgdata;
    std::string state_dir;
    std::vector<std::string> networks;
    bool none = false;
    std::string database;  // "" = unchanged
    std::string role;      // "" = unchanged
    int wait_seconds = 10;
};

// Local to the node: keeper.json lives on its host. Run it on every node of the group.
void add_allow_clients(CLI::App* node) {
    auto o = std::make_shared<ClientAccessOptions>();
    CLI::App* cmd = node->add_subcommand(
        "allow-clients",
        "Networks from which applications may connect to this node (replaces the list in keeper.json; the running "
        "keeper rewrites pg_hba.conf and reloads). Run it on every node of the group with the same list");
    cmd->add_option("networks", o->networks, "Addresses or networks (CIDR), e.g. 10.0.1.0/24");
    cmd->add_flag("--none", o->none, "Remove every application line");
    cmd->add_option("--pgdata", o->pgdata, "Data directory of the local node")->required()->envname("PGDATA");
    cmd->add_option("--state-dir", o->state_dir, "Keeper state directory (default: <pgdata>.keeper)");
    cmd->add_option("--client-database", o->database, "Databases admitted: all or names, comma-separated (default: unchanged)");
    cmd->add_option("--client-role", o->role, "Roles admitted: all, names or +group, comma-separated (default: unchanged)");
    cmd->add_option("--wait", o->wait_seconds, "Seconds to wait for the keeper to apply it (0: do not wait)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->callback([o] {
        namespace k = autofailover::keeper;
        if (o->none == !o->networks.empty())
            throw CliError(ExitCode::BadArguments, "give the networks to allow, or --none to remove them all");
        std::optional<long> pid;
        try {
            pid = k::set_client_access(o->pgdata, o->state_dir, o->networks,
                                       o->database.empty() ? std::nullopt : std::optional<std::string>(o->database),
                                       o->role.empty() ? std::nullopt : std::optional<std::string>(o->role));
        } catch (const k::KeeperError& e) {
            throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
        } catch (const std::exception& e) {
            throw CliError(ExitCode::BadArguments, e.what());
        }
        auto access = k::client_access(o->pgdata, o->state_dir);
        if (access.skip_pg_hba) {
            std::cout << "keeper.json updated; this node runs with --skip-pg-hba: its pg_hba.conf is yours to write\n";
            return;
        }
        if (!pid) {
            std::cout << "keeper.json updated; no keeper runs for this node: it applies the change when it starts\n";
            return;
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o->wait_seconds);
        while (!access.hba_applied && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            access = k::client_access(o->pgdata, o->state_dir);
        }
        if (!access.hba_applied) {
            if (o->wait_seconds == 0) {
                std::cout << fmt::format("keeper.json updated; the keeper (pid {}) applies it within a poll period\n", *pid);
                return;
            }
            throw CliError(ExitCode::Timeout,
                           fmt::format("keeper.json updated, but the keeper (pid {}) did not rewrite pg_hba.conf "
                                       "within {}s: see its log",
                                       *pid, o->wait_seconds));
        }
        std::cout << fmt::format("pg_hba.conf of this node now admits {} from {}\n", access.client_role,
                                 access.allow_clients.empty() ? std::string("no client network")
                                                              : fmt::format("{}", fmt::join(access.allow_clients, ", ")));
    });
}

struct FormationClientOptions {
    MonitorTarget target;
    std::vector<std::string> networks;
    bool none = false;
    std::string database = "all";
    std::string role = "all";
};

// On the monitor: every keeper of the formation merges the list into its pg_hba.conf block at its next
// monitor contact (docs/clients.md). Nothing is run on the nodes' hosts.
void add_formation_allow_clients(CLI::App* formation) {
    auto o = std::make_shared<FormationClientOptions>();
    CLI::App* cmd = formation->add_subcommand(
        "allow-clients",
        "Networks from which applications may connect to every node of the formation (stored on the monitor, "
        "replaces the formation's list; added to each node's own list)");
    cmd->add_option("networks", o->networks, "Addresses or networks (CIDR), space- or comma-separated")
        ->delimiter(',');
    cmd->add_flag("--none", o->none, "Remove the formation's list (nodes keep their own)");
    cmd->add_option("--client-database", o->database, "Databases admitted: all or names, comma-separated")
        ->capture_default_str();
    cmd->add_option("--client-role", o->role, "Roles admitted: all, names or +group, comma-separated")
        ->capture_default_str();
    add_monitor_options(cmd, o->target);
    cmd->callback([o] {
        if (o->none == !o->networks.empty())
            throw CliError(ExitCode::BadArguments, "give the networks to allow, or --none to remove the formation's list");
        // The monitor checks the same again (and is what counts); here only for a message before connecting.
        for (const auto& network : o->networks)
            if (auto problem = autofailover::client_network_problem(network); !problem.empty())
                throw CliError(ExitCode::BadArguments, fmt::format("allow-clients: {}", problem));
        if (auto problem = autofailover::client_database_problem(o->database); !problem.empty())
            throw CliError(ExitCode::BadArguments, fmt::format("--client-database: {}", problem));
        if (auto problem = autofailover::client_role_problem(o->role); !problem.empty())
            throw CliError(ExitCode::BadArguments, fmt::format("--client-role: {}", problem));
        for (const auto& network : o->networks)
            if (network.size() > 2 && network.compare(network.size() - 2, 2, "/0") == 0)
                std::cerr << fmt::format("autoctl: WARNING: allow-clients {} admits every address; only a password "
                                         "stands in the way\n",
                                         network);
        MonitorClient monitor(resolve_monitor_uri(o->target));
        const long long version =
            monitor.set_formation_allow_clients(o->target.formation, o->networks, o->database, o->role);
        if (o->networks.empty())
            std::cout << fmt::format("formation {}: no formation-wide client network (version {}); nodes keep the "
                                     "networks of their own keeper.json\n",
                                     o->target.formation, version);
        else
            std::cout << fmt::format("formation {}: every node admits role {} to database {} from {} (version {})\n",
                                     o->target.formation, o->role, o->database, fmt::join(o->networks, ", "), version);
        std::cout << "Each keeper rewrites its pg_hba.conf at its next monitor contact (within a poll period); "
                     "`autoctl show uri --pgdata DIR` on a node shows what it applied\n";
    });
}

}  // namespace

void add_set_commands(CLI::App& app) {
    CLI::App* set = app.add_subcommand("set", "Change node or formation replication settings");
    set->require_subcommand(1);
    CLI::App* node = set->add_subcommand("node", "Change a node's candidate priority or replication quorum");
    node->require_subcommand(1);

    auto prio = std::make_shared<SetOptions>();
    CLI::App* priority = node->add_subcommand(
        "candidate-priority", "0..100: higher is promoted first; 0 means never promoted");
    priority->add_option("priority", prio->number, "New candidate priority")->required()->check(CLI::Range(0, 100));
    add_monitor_options(priority, prio->target);
    priority->add_option("--name", prio->name, "Node name (default: the node of --pgdata)");
    add_wait_option(priority, prio->wait_seconds, kDefaultWaitSeconds);
    priority->callback([prio] {
        std::string name = resolve_node_name(prio->name, prio->target);
        MonitorClient monitor(resolve_monitor_uri(prio->target));
        run_and_follow(
            monitor, prio->target.formation, prio->wait_seconds,
            [&] {
                report(monitor.set_candidate_priority(prio->target.formation, name, prio->number),
                       fmt::format("candidate_priority of {} = {}", name, prio->number));
            },
            std::cout);
    });

    auto quorum = std::make_shared<SetOptions>();
    CLI::App* quorum_cmd = node->add_subcommand(
        "replication-quorum", "true: the node counts for synchronous replication and may be promoted; false: async");
    quorum_cmd->add_option("value", quorum->flag, "true or false")->required();
    add_monitor_options(quorum_cmd, quorum->target);
    quorum_cmd->add_option("--name", quorum->name, "Node name (default: the node of --pgdata)");
    add_wait_option(quorum_cmd, quorum->wait_seconds, kDefaultWaitSeconds);
    quorum_cmd->callback([quorum] {
        std::string name = resolve_node_name(quorum->name, quorum->target);
        MonitorClient monitor(resolve_monitor_uri(quorum->target));
        run_and_follow(
            monitor, quorum->target.formation, quorum->wait_seconds,
            [&] {
                report(monitor.set_replication_quorum(quorum->target.formation, name, quorum->flag),
                       fmt::format("replication_quorum of {} = {}", name, quorum->flag ? "true" : "false"));
            },
            std::cout);
    });

    add_allow_clients(node);

    CLI::App* formation = set->add_subcommand("formation", "Change a formation setting");
    formation->require_subcommand(1);
    auto nss = std::make_shared<SetOptions>();
    CLI::App* nss_cmd = formation->add_subcommand(
        "number-sync-standbys", "How many quorum standbys must acknowledge each commit (0: prefer availability)");
    nss_cmd->add_option("number", nss->number, "New value")->required()->check(CLI::NonNegativeNumber);
    add_monitor_options(nss_cmd, nss->target);
    add_wait_option(nss_cmd, nss->wait_seconds, kDefaultWaitSeconds);
    nss_cmd->callback([nss] {
        MonitorClient monitor(resolve_monitor_uri(nss->target));
        run_and_follow(
            monitor, nss->target.formation, nss->wait_seconds,
            [&] {
                report(monitor.set_number_sync_standbys(nss->target.formation, nss->number),
                       fmt::format("number_sync_standbys of formation {} = {}", nss->target.formation, nss->number));
            },
            std::cout);
    });

    add_formation_allow_clients(formation);
}

}  // namespace autoctl
