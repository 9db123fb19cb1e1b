// The autoctl command tree: one add_* function per command family, each in
// its own file; build_command_tree() assembles them.
#pragma once

#include <CLI/CLI.hpp>

namespace autoctl {

void add_create_commands(CLI::App& app);       // create monitor | postgres
void add_node_commands(CLI::App& app);         // run | stop | status
void add_show_commands(CLI::App& app);         // show state | uri | events | settings | standby-names | systemd
void add_perform_commands(CLI::App& app);      // perform switchover | failover | promotion
void add_maintenance_commands(CLI::App& app);  // enable | disable maintenance
void add_set_commands(CLI::App& app);          // set node ... | set formation ...
void add_drop_commands(CLI::App& app);         // drop node
void add_monitor_ha_commands(CLI::App& app);   // run-monitor | show monitors (after add_show_commands)
void add_adopt_commands(CLI::App& app);        // enable monitor (after add_maintenance_commands)
void add_observe_commands(CLI::App& app);      // show metrics | fsm, watch (after add_show_commands)
void add_config_commands(CLI::App& app);       // config get | set | check, reload
void add_backup_commands(CLI::App& app);       // perform backup | show backups (after perform and show)

void build_command_tree(CLI::App& app);

}  // namespace autoctl
