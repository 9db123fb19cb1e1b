// autoctl run | stop | status: the local keeper of one data directory.
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"

#include "keeper/keeper.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace autoctl {

namespace {

namespace keeper = autofailover::keeper;

// How long `autoctl stop` waits for the keeper to stop Postgres and exit.
constexpr int kDefaultStopTimeoutSeconds = 30;

struct NodeOptions {
    std::string pgdata;
    std::string state_dir;
    int stop_timeout_seconds = kDefaultStopTimeoutSeconds;
    bool json = false;
};

void add_pgdata_options(CLI::App* cmd, NodeOptions& opts) {
    cmd->add_option("--pgdata", opts.pgdata, "Data directory of the node")->required()->envname("PGDATA");
    cmd->add_option("--state-dir", opts.state_dir, "Keeper state directory (default: <pgdata>.keeper)");
}

template <typename Fn>
auto keeper_call(Fn&& fn) {
    try {
        return fn();
    } catch (const keeper::KeeperError& e) {
        throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
    }
}

void print_status(const keeper::KeeperStatus& s, bool json) {
    if (json) {
        nlohmann::json j{{"keeper_running", s.keeper_running},
                         {"keeper_pid", s.keeper_pid ? nlohmann::json(*s.keeper_pid) : nlohmann::json(nullptr)},
                         {"postgres_running", s.postgres_running},
                         {"node_id", s.node_id ? nlohmann::json(*s.node_id) : nlohmann::json(nullptr)},
                         {"name", s.name},
                         {"formation", s.formation},
                         {"group_id", s.group_id},
                         {"current_state", s.current_state},
                         {"goal_state", s.goal_state},
                         {"monitor", s.monitor_uri_redacted},
                         {"seconds_since_monitor_contact", s.seconds_since_monitor_contact
                                                               ? nlohmann::json(*s.seconds_since_monitor_contact)
                                                               : nlohmann::json(nullptr)},
                         {"state_dir", s.state_dir}};
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("keeper:    {}\n", s.keeper_running ? fmt::format("running (pid {})", *s.keeper_pid)
                                                                  : std::string("not running"));
    std::cout << fmt::format("postgres:  {}\n", s.postgres_running ? "running" : "not running");
    if (s.node_id)
        std::cout << fmt::format("node:      {} (id {}, formation {}, group {})\n", s.name, *s.node_id, s.formation,
                                 s.group_id);
    else
        std::cout << "node:      not registered with a monitor\n";
    std::cout << fmt::format("state:     {} (goal {})\n", s.current_state.empty() ? "-" : s.current_state,
                             s.goal_state.empty() ? "-" : s.goal_state);
    std::cout << fmt::format("monitor:   {}", s.monitor_uri_redacted);
    if (s.seconds_since_monitor_contact)
        std::cout << fmt::format(" (last contact {:.1f}s ago)", *s.seconds_since_monitor_contact);
    std::cout << fmt::format("\nstate dir: {}\n", s.state_dir);
}

}  // namespace

void add_node_commands(CLI::App& app) {
    auto run_opts = std::make_shared<NodeOptions>();
    CLI::App* run = app.add_subcommand(
        "run", "Run the node's keeper in the foreground until SIGTERM/SIGINT (which also stop its Postgres)");
    add_pgdata_options(run, *run_opts);
    run->callback([run_opts] {
        int status = keeper_call([&] { return keeper::run_keeper(run_opts->pgdata, run_opts->state_dir); });
        if (status != 0) throw ExitWith(status);
    });

    auto stop_opts = std::make_shared<NodeOptions>();
    CLI::App* stop =
        app.add_subcommand("stop", "Stop the node's keeper (SIGTERM through keeper.pid); the keeper stops Postgres");
    add_pgdata_options(stop, *stop_opts);
    stop->add_option("--timeout", stop_opts->stop_timeout_seconds, "Seconds to wait for the keeper to exit")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    stop->callback([stop_opts] {
        bool stopped = keeper_call([&] {
            return keeper::stop_keeper(stop_opts->pgdata, stop_opts->state_dir,
                                       std::chrono::seconds(stop_opts->stop_timeout_seconds));
        });
        if (!stopped)
            throw CliError(ExitCode::LocalPostgresError,
                           fmt::format("the keeper of {} is still running after {}s. See keeper.log in its state "
                                       "directory; run `autoctl stop` again or kill the pid in keeper.pid.",
                                       stop_opts->pgdata, stop_opts->stop_timeout_seconds));
        std::cout << fmt::format("keeper of {} stopped\n", stop_opts->pgdata);
    });

    auto status_opts = std::make_shared<NodeOptions>();
    CLI::App* status = app.add_subcommand(
        "status", "Local view of the node: keeper and Postgres processes, state files (exit 4 if the keeper is down)");
    add_pgdata_options(status, *status_opts);
    status->add_flag("--json", status_opts->json, "Print JSON");
    status->callback([status_opts] {
        auto s = keeper_call([&] { return keeper::keeper_status(status_opts->pgdata, status_opts->state_dir); });
        print_status(s, status_opts->json);
        if (!s.keeper_running) throw ExitWith(static_cast<int>(ExitCode::LocalPostgresError));
    });
}

}  // namespace autoctl
