// The one place that builds the command lines and environments of the PostgreSQL
// tools the keeper runs (initdb, pg_ctl, pg_controldata, postgres --single,
// pg_basebackup, pg_rewind): the binary from pg_bindir, -D pgdata, the locale, and
// credentials through the environment (PGPASSFILE, passfile= in a conninfo), never
// a password in argv. Callers run the result with run_child().
#pragma once

#include "support/child_process.h"
#include "keeper/keeper_config.h"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace autofailover::keeper {

struct ToolRun {
    std::vector<std::string> argv;
    support::ChildOptions options;
};

// What every tool run shares: its deadline, the keeper's report tick (every poll_period)
// and cancellation. Tool-specific environment is added by the builders below.
support::ChildOptions tool_options(const KeeperConfig& config, std::chrono::milliseconds timeout,
                          const std::function<void()>& tick = {}, const std::function<bool()>& cancel = {});

// <pg_bindir>/<name>.
std::string pg_tool(const KeeperConfig& config, const std::string& name);

// initdb of config.pgdata with the node's host auth method (within postgres_start_timeout).
ToolRun initdb_run(const KeeperConfig& config, const std::function<void()>& tick);

// pg_ctl start / stop -m mode / promote, each waiting (-w) up to its named timeout.
ToolRun pg_ctl_start_run(const KeeperConfig& config, const std::string& log_path, const std::function<void()>& tick,
                         const std::function<bool()>& cancel);
ToolRun pg_ctl_stop_run(const KeeperConfig& config, const std::string& mode, const std::function<void()>& tick);
ToolRun pg_ctl_promote_run(const KeeperConfig& config, const std::function<void()>& tick);

// pg_controldata -D pgdata (10 s, LC_ALL=C so its labels can be parsed).
ToolRun pg_controldata_run(const KeeperConfig& config);
// postgres --single: crash recovery of a stopped cluster, which takes no connections.
ToolRun single_user_recovery_run(const KeeperConfig& config, const std::function<void()>& tick);

// pg_basebackup of host:port into target_dir through `slot`, as the replication role.
ToolRun pg_basebackup_run(const KeeperConfig& config, const std::string& host, int port, const std::string& slot,
                          const std::string& target_dir, const std::function<void()>& tick,
                          const std::function<bool()>& cancel);
// pg_rewind of pgdata from host:port; restore_target_wal adds --restore-target-wal.
ToolRun pg_rewind_run(const KeeperConfig& config, const std::string& host, int port, bool restore_target_wal,
                      const std::function<void()>& tick, const std::function<bool()>& cancel);

}  // namespace autofailover::keeper
