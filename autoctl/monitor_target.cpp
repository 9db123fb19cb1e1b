#include "autoctl/monitor_target.h"

#include "autoctl/exit_codes.h"

#include "keeper/keeper.h"

#include <fmt/format.h>

#include <cstdlib>
#include <regex>

namespace autoctl {

void add_monitor_options(CLI::App* cmd, MonitorTarget& target) {
    cmd->add_option("--monitor", target.monitor,
                    "Monitor URI (default: $AUTOFAILOVER_MONITOR, else the monitor of --pgdata's keeper)");
    cmd->add_option("--pgdata", target.pgdata, "Data directory of a local node: its keeper config names the monitor");
    cmd->add_option("--formation", target.formation, "Formation")->capture_default_str();
}

void add_json_option(CLI::App* cmd, MonitorTarget& target) {
    cmd->add_flag("--json", target.json, "Print JSON instead of a table");
}

void add_wait_option(CLI::App* cmd, int& wait_seconds, int default_seconds) {
    wait_seconds = default_seconds;
    cmd->add_option("--wait", wait_seconds,
                    "Follow the operation until the formation is healthy again, at most this many seconds "
                    "(0: do not wait)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
}

namespace {

autofailover::keeper::KeeperStatus keeper_of(const std::string& pgdata) {
    try {
        auto status = autofailover::keeper::keeper_status(pgdata);
        if (status.monitor_uri_redacted.empty())
            throw CliError(ExitCode::BadArguments,
                           fmt::format("{} has no keeper config (looked in {}). Was it created with `autoctl create "
                                       "postgres`? Otherwise give --monitor.",
                                       pgdata, status.state_dir));
        return status;
    } catch (const autofailover::keeper::KeeperError& e) {
        throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
    }
}

}  // namespace

std::string resolve_monitor_uri(const MonitorTarget& target) {
    if (!target.monitor.empty()) return target.monitor;
    if (const char* env = std::getenv("AUTOFAILOVER_MONITOR"); env != nullptr && *env != '\0') return env;
    if (!target.pgdata.empty()) {
        // The keeper role may only run the keeper protocol; operators are OS
        // users with the autofailover_operator role (libpq's default user).
        static const std::regex keeper_user(R"(^(postgres(ql)?://)autofailover_keeper(:[^@]*)?@)");
        return std::regex_replace(keeper_of(target.pgdata).monitor_uri_redacted, keeper_user, "$1");
    }
    throw CliError(ExitCode::BadArguments,
                   "which monitor? Give --monitor URI, set AUTOFAILOVER_MONITOR, or give --pgdata of a local node "
                   "(autoctl create monitor prints the URIs).");
}

std::string resolve_node_name(const std::string& name, const MonitorTarget& target) {
    if (!name.empty()) return name;
    if (!target.pgdata.empty()) {
        auto status = keeper_of(target.pgdata);
        if (!status.name.empty()) return status.name;
        throw CliError(ExitCode::BadArguments,
                       fmt::format("the keeper of {} has no node name yet (not registered); give --name", target.pgdata));
    }
    throw CliError(ExitCode::BadArguments, "which node? Give --name NODE or --pgdata of the node's data directory.");
}

}  // namespace autoctl
