// autoctl set node candidate-priority | replication-quorum, set formation number-sync-standbys
#include "autoctl/command_tree.h"
#include "autoctl/monitor_client.h"
#include "autoctl/monitor_target.h"
#include "autoctl/wait_for_health.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

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
}

}  // namespace autoctl
