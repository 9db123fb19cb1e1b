// autoctl enable monitor: a new, empty monitor adopts this running node
// (docs/monitor-ha.md, M6). Run on every data node of the formation, primary first.
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "keeper/adoption.h"
#include "keeper/keeper.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace autoctl {
namespace {

namespace keeper = autofailover::keeper;

struct EnableMonitorOptions {
    keeper::AdoptOptions adopt;
    int candidate_priority = -1;
    std::string replication_quorum;
};

}  // namespace

void add_adopt_commands(CLI::App& app) {
    CLI::App* enable = app.get_subcommand("enable");
    auto o = std::make_shared<EnableMonitorOptions>();
    CLI::App* cmd = enable->add_subcommand(
        "monitor", "Hand this running node to a new, empty monitor that replaces one lost for good: it keeps its "
                   "id, role, priority and quorum; nothing restarts");
    cmd->add_option("--pgdata", o->adopt.pgdata, "Data directory of the node")->required()->envname("PGDATA");
    cmd->add_option("--monitor", o->adopt.monitor_uri, "URI of the new monitor (printed by autoctl create monitor)")
        ->required();
    cmd->add_option("--monitor-password-file", o->adopt.monitor_password_file,
                    "File (mode 0600) whose first line is autofailover_keeper's password on the new monitor")
        ->envname("AUTOFAILOVER_MONITOR_PASSWORD_FILE");
    cmd->add_option("--state-dir", o->adopt.state_dir, "Keeper state directory (default: <pgdata>.keeper)");
    cmd->add_option("--candidate-priority", o->candidate_priority,
                    "0..100 (default: the value the old monitor last assigned, from state.json)")
        ->check(CLI::Range(0, 100));
    cmd->add_option("--replication-quorum", o->replication_quorum, "true|false (default: from state.json)")
        ->check(CLI::IsMember({"true", "false"}));
    cmd->callback([o] {
        if (o->candidate_priority >= 0) o->adopt.candidate_priority = o->candidate_priority;
        if (!o->replication_quorum.empty()) o->adopt.replication_quorum = o->replication_quorum == "true";
        try {
            const keeper::AdoptedNode node = keeper::adopt_by_new_monitor(o->adopt);
            std::cout << fmt::format("{} (id {}, group {}) adopted by the new monitor: state {}, goal {}{}\n",
                                     node.name, node.node_id, node.group_id, node.reported_state, node.goal_state,
                                     node.keeper_signalled ? "; its keeper reloads keeper.json"
                                                           : "; its keeper uses the new monitor when it starts");
        } catch (const keeper::KeeperError& e) {
            throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
        }
    });
}

}  // namespace autoctl
