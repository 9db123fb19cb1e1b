// autoctl drop node
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

struct DropOptions {
    MonitorTarget target;
    std::string name;
    bool force = false;
    int wait_seconds = kDefaultWaitSeconds;
};

}  // namespace

void add_drop_commands(CLI::App& app) {
    CLI::App* drop = app.add_subcommand("drop", "Remove a node from its formation");
    drop->require_subcommand(1);
    auto opts = std::make_shared<DropOptions>();
    CLI::App* node = drop->add_subcommand(
        "node", "Remove a node: its keeper is told to leave (dropped); --force removes it from the monitor at once");
    add_monitor_options(node, opts->target);
    node->add_option("--name", opts->name, "Node name (default: the node of --pgdata)");
    node->add_flag("--force", opts->force,
                   "Remove the node from the monitor now, without waiting for its keeper (use when the node is gone)");
    add_wait_option(node, opts->wait_seconds, kDefaultWaitSeconds);
    node->callback([opts] {
        std::string name = resolve_node_name(opts->name, opts->target);
        MonitorClient monitor(resolve_monitor_uri(opts->target));
        run_and_follow(
            monitor, opts->target.formation, opts->wait_seconds,
            [&] {
                bool removed = monitor.remove_node_by_name(opts->target.formation, name, opts->force);
                std::cout << (removed ? fmt::format("{} is being removed from formation {}\n", name,
                                                    opts->target.formation)
                                      : fmt::format("{} was already removed\n", name));
            },
            std::cout);
    });
}

}  // namespace autoctl
