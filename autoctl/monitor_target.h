// Which monitor and which node an operator command talks about: --monitor,
// else $AUTOFAILOVER_MONITOR, else the monitor in the keeper config of --pgdata.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <string>

namespace autoctl {

struct MonitorTarget {
    std::string monitor;
    std::string pgdata;
    std::string formation = "default";
    int group = 0;
    bool json = false;
};

// --monitor, --pgdata and --formation on an operator command.
void add_monitor_options(CLI::App* cmd, MonitorTarget& target);
// --json.
void add_json_option(CLI::App* cmd, MonitorTarget& target);
// --wait SECONDS (0: return at once), default `default_seconds`.
void add_wait_option(CLI::App* cmd, int& wait_seconds, int default_seconds);

// The URI an operator command connects with. A URI taken from the keeper
// config names the keeper role, which may not run operator functions, so the
// OS user (libpq's default user) connects to the same host, port and database.
std::string resolve_monitor_uri(const MonitorTarget& target);

// --name when given, else the node name in the keeper config of --pgdata.
std::string resolve_node_name(const std::string& name, const MonitorTarget& target);

}  // namespace autoctl
