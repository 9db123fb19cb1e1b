// The node's own Postgres: what it is doing (observe) and the few things the
// keeper does to it (pg_ctl, SQL over the unix socket as the OS superuser).
#pragma once

#include "support/child_process.h"
#include "keeper/keeper_config.h"
#include "libautofailover/lsn.h"

#include <pqxx/pqxx>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

struct StandbyRow {  // one row of pg_stat_replication (our replication role only)
    std::string application_name;
    std::string state;       // streaming, catchup, ...
    std::string sync_state;  // sync, quorum, potential, async
    Lsn flush_lsn = 0;
    // How long ago the standby's last reply arrived (pg_stat_replication.reply_time);
    // empty before its first reply.
    std::optional<std::chrono::milliseconds> reply_age;
};

struct ControlData {
    std::string cluster_state;  // "in production", "shut down", "shut down in recovery", ...
    Lsn checkpoint_lsn = 0;
    int timeline = 0;
    std::string system_identifier;
    bool cleanly_stopped() const { return cluster_state == "shut down" || cluster_state == "shut down in recovery"; }
};

struct Observation {
    bool data_dir_exists = false;  // PG_VERSION present
    bool running = false;          // postmaster alive
    bool accepting = false;        // we could run SQL
    bool in_recovery = false;
    bool standby_signal = false;
    int timeline = 0;
    // node_active's lsn: primary flush LSN; standby max(receive, replay), because right
    // after a restart the receive LSN starts at a segment boundary, behind what was replayed.
    Lsn lsn = 0;
    bool wal_receiver_streaming = false;
    std::vector<StandbyRow> standbys;
    // Standby replay (the /replica?lag=<duration> bound): every received WAL byte is
    // replayed, and how old the last replayed commit is (primary's commit timestamp).
    bool replay_caught_up = false;
    std::optional<std::chrono::milliseconds> last_replayed_commit_age;
};

class LocalPostgres {
public:
    explicit LocalPostgres(const KeeperConfig& config);

    const std::string& pgdata() const { return config_.pgdata; }

    Observation observe();
    bool data_dir_exists() const;
    bool postmaster_alive() const;
    // The postmaster died but its process is not reaped yet (a zombie): Postgres
    // refuses to start until then ("lock file already exists").
    bool postmaster_unreaped() const;
    std::optional<long> postmaster_pid() const;  // from postmaster.pid, if readable
    std::optional<ControlData> control_data();

    // pg_ctl wrappers; throw KeeperError(LocalPostgres) with the tool's output on failure.
    // `cancel` is polled while pg_ctl waits: true kills pg_ctl and stops a postmaster that came up (immediate).
    void start(const std::function<void()>& tick = {}, const std::function<bool()>& cancel = {});
    void stop(const std::string& mode, const std::function<void()>& tick = {});
    // A stopped cluster that was not shut down cleanly (crash, kill -9) gets its crash
    // recovery in single-user mode, which takes no connections, so that pg_control's
    // checkpoint is the end of its WAL. No-op when it runs or was shut down cleanly.
    void finish_crash_recovery(const std::function<void()>& tick = {});
    void promote(const std::function<void()>& tick = {});
    void reload();

    // SQL as the local superuser (unix socket). Throws on error; the cached
    // connection is dropped so the next call reconnects.
    pqxx::result sql(const std::string& query);
    template <typename... Args>
    pqxx::result sql_params(const std::string& query, Args&&... args) {
        return with_connection([&](pqxx::connection& c) {
            pqxx::nontransaction tx(c);
            return tx.exec_params(query, std::forward<Args>(args)...);
        });
    }
    void disconnect() { conn_.reset(); }
    // <pgdata>/../<basename>.postgres.log, where pg_ctl start sends the server log.
    std::string server_log_path() const { return postgres_log_path(); }

private:
    pqxx::result with_connection(const std::function<pqxx::result(pqxx::connection&)>& fn);
    std::string postgres_log_path() const;

    KeeperConfig config_;
    std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace autofailover::keeper
