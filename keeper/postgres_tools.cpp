#include "keeper/postgres_tools.h"

#include "keeper/postgres_files.h"

#include <algorithm>

namespace autofailover::keeper {
namespace {

// pg_ctl -t takes whole seconds; at least 1.
std::string whole_seconds(std::chrono::milliseconds timeout) {
    return std::to_string(std::max<long long>(1, timeout.count() / 1000));
}

}  // namespace

support::ChildOptions tool_options(const KeeperConfig& config, std::chrono::milliseconds timeout,
                          const std::function<void()>& tick, const std::function<bool()>& cancel) {
    support::ChildOptions options;
    options.timeout = timeout;
    options.tick = tick;
    options.tick_every = config.timeouts.poll_period;
    options.cancel = cancel;
    return options;
}

std::string pg_tool(const KeeperConfig& config, const std::string& name) {
    return support::pg_program(config.pg_bindir, name);
}

ToolRun initdb_run(const KeeperConfig& config, const std::function<void()>& tick) {
    ToolRun run{{pg_tool(config, "initdb"), "-D", config.pgdata, "--auth-local=peer",
                 "--auth-host=" + config.auth_method, "-E", "UTF8", "--no-instructions"},
                tool_options(config, config.timeouts.postgres_start_timeout, tick)};
    if (!config.sync_new_data_directories) run.argv.push_back("--no-sync");
    run.options.extra_env = {"LC_ALL=C.UTF-8"};
    return run;
}

ToolRun pg_ctl_start_run(const KeeperConfig& config, const std::string& log_path, const std::function<void()>& tick,
                         const std::function<bool()>& cancel) {
    const auto timeout = config.timeouts.postgres_start_timeout;
    return {{pg_tool(config, "pg_ctl"), "-D", config.pgdata, "-l", log_path, "-w", "-t", whole_seconds(timeout), "start"},
            tool_options(config, timeout + std::chrono::seconds(5), tick, cancel)};
}

ToolRun pg_ctl_stop_run(const KeeperConfig& config, const std::string& mode, const std::function<void()>& tick) {
    const auto timeout = config.timeouts.postgres_stop_timeout;
    return {{pg_tool(config, "pg_ctl"), "-D", config.pgdata, "-m", mode, "-w", "-t", whole_seconds(timeout), "stop"},
            tool_options(config, timeout + std::chrono::seconds(5), tick)};
}

ToolRun pg_ctl_promote_run(const KeeperConfig& config, const std::function<void()>& tick) {
    const auto timeout = config.timeouts.promote_timeout;
    return {{pg_tool(config, "pg_ctl"), "-D", config.pgdata, "-w", "-t", whole_seconds(timeout), "promote"},
            tool_options(config, timeout + std::chrono::seconds(5), tick)};
}

ToolRun pg_controldata_run(const KeeperConfig& config) {
    ToolRun run{{pg_tool(config, "pg_controldata"), "-D", config.pgdata},
                tool_options(config, std::chrono::seconds(10))};
    run.options.extra_env = {"LC_ALL=C"};
    return run;
}

ToolRun single_user_recovery_run(const KeeperConfig& config, const std::function<void()>& tick) {
    // stdin is /dev/null: the single-user backend redoes the WAL, writes a shutdown checkpoint and exits.
    ToolRun run{{pg_tool(config, "postgres"), "--single", "-F", "-D", config.pgdata, "template1"},
                tool_options(config, config.timeouts.postgres_start_timeout, tick)};
    run.options.extra_env = {"LC_ALL=C"};
    return run;
}

ToolRun pg_basebackup_run(const KeeperConfig& config, const std::string& host, int port, const std::string& slot,
                          const std::string& target_dir, const std::function<void()>& tick,
                          const std::function<bool()>& cancel) {
    // --no-sync: one syncfs afterwards instead of pg_basebackup's fsync of every file.
    ToolRun run{{pg_tool(config, "pg_basebackup"), "-D", target_dir, "-h", host, "-p", std::to_string(port), "-U",
                 "autofailover_replicator", "-S", slot, "-X", "stream", "-c", "fast", "-w", "--no-sync"},
                tool_options(config, config.timeouts.base_backup_timeout, tick, cancel)};
    if (!config.max_backup_rate.empty()) {
        run.argv.push_back("-r");
        run.argv.push_back(config.max_backup_rate);
    }
    run.options.extra_env = {"PGAPPNAME=" + slot, "PGCONNECT_TIMEOUT=2"};
    for (auto& e : replication_client_env(config)) run.options.extra_env.push_back(e);
    return run;
}

ToolRun pg_rewind_run(const KeeperConfig& config, const std::string& host, int port, bool restore_target_wal,
                      const std::function<void()>& tick, const std::function<bool()>& cancel) {
    // --no-sync: one syncfs afterwards instead of pg_rewind's fsync of every file in PGDATA (seconds on
    // this shared VM); nothing starts from the directory before it is durable.
    // jit=off: pg_rewind lists the source's files with a recursive query whose row estimates are far
    // too high, so the primary JIT-compiled it on every rewind (0.47-0.79 s of a 0.95-1.59 s pg_rewind,
    // docs/benchmarks.md).
    ToolRun run{{pg_tool(config, "pg_rewind"), "--target-pgdata", config.pgdata, "--source-server",
                 source_conninfo(config, host, port) + " options='-c jit=off'", "--no-sync"},
                tool_options(config, config.timeouts.rewind_timeout, tick, cancel)};
    if (restore_target_wal) run.argv.push_back("--restore-target-wal");
    run.options.extra_env = {"LC_ALL=C"};
    return run;
}

}  // namespace autofailover::keeper
