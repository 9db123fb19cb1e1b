// autoctl enable | disable maintenance
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

struct MaintenanceOptions {
    MonitorTarget target;
    std::string name;
    int wait_seconds = kDefaultWaitSeconds;
};

void add_maintenance(CLI::App* parent, bool enable) {
    auto opts = std::make_shared<MaintenanceOptions>();
    CLI::App* cmd = parent->add_subcommand(
        "maintenance", enable ? "Take a node out of service (a primary is switched over first), then wait"
                              : "Bring a node back from maintenance as a standby, then wait");
    add_monitor_options(cmd, opts->target);
    cmd->add_option("--name", opts->name, "Node name (default: the node of --pgdata)");
    add_wait_option(cmd, opts->wait_seconds, kDefaultWaitSeconds);
    cmd->callback([opts, enable] {
        std::string node = resolve_node_name(opts->name, opts->target);
        MonitorClient monitor(resolve_monitor_uri(opts->target));
        run_and_follow(
            monitor, opts->target.formation, opts->wait_seconds,
            [&] {
                bool changed = enable ? monitor.start_maintenance(opts->target.formation, node)
                                      : monitor.stop_maintenance(opts->target.formation, node);
                std::cout << (changed ? fmt::format("{} maintenance of {} requested\n", enable ? "start" : "end", node)
                                      : fmt::format("{} is already {} maintenance; nothing to do\n", node,
                                                    enable ? "in" : "out of"));
            },
            std::cout);
    });
}

}  // namespace

void add_maintenance_commands(CLI::App& app) {
    CLI::App* enable = app.add_subcommand("enable", "Enable a feature on a node (maintenance)");
    enable->require_subcommand(1);
    add_maintenance(enable, true);
    CLI::App* disable = app.add_subcommand("disable", "Disable a feature on a node (maintenance)");
    disable->require_subcommand(1);
    add_maintenance(disable, false);
}

}  // namespace autoctl
