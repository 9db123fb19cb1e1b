#include "autoctl/command_tree.h"

namespace autoctl {

void build_command_tree(CLI::App& app) {
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show the help of every command");
    add_create_commands(app);
    add_node_commands(app);
    add_show_commands(app);
    add_perform_commands(app);
    add_maintenance_commands(app);
    add_set_commands(app);
    add_drop_commands(app);
    add_monitor_ha_commands(app);
    add_adopt_commands(app);
    add_observe_commands(app);
    add_config_commands(app);
    add_backup_commands(app);
}

}  // namespace autoctl
