#include "keeper/local_postgres.h"

#include "support/atomic_file.h"
#include "support/conninfo.h"
#include "keeper/keeper.h"
#include "keeper/pid_file.h"
#include "keeper/postgres_tools.h"

#include <cerrno>
#include <csignal>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// The timeline a node is on. A primary: the one it writes (in its WAL file
// names; pg_control_checkpoint() lags until the checkpoint after a promotion).
// A standby: the WAL receiver's while it streams; otherwise the newest timeline
// of the WAL segment that holds its latest received/replayed byte. pg_control's
// min recovery / checkpoint timelines lag: a standby restarted from a cleanly
// stopped primary ("no rewind required") keeps its old timeline there until a
// restartpoint or buffer write, so once the primary stopped (switchover) it
// looked behind the primary and the switchover timed out.
constexpr const char* kTimelineSql =
    "CASE WHEN NOT pg_is_in_recovery() "
    " THEN ('x' || substr(pg_walfile_name(pg_current_wal_flush_lsn()), 1, 8))::bit(32)::int "
    " ELSE coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'), "
    "  greatest((SELECT max(('x' || substr(w.name, 1, 8))::bit(32)::int) FROM pg_ls_waldir() w, "
    "             (SELECT greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) - '0/1'::pg_lsn AS n, "
    "                     (SELECT setting::numeric FROM pg_settings WHERE name = 'wal_segment_size') AS seg) p "
    "            WHERE w.name ~ '^[0-9A-F]{24}$' AND p.n >= 0 AND substr(w.name, 9) = "
    "             upper(lpad(to_hex(trunc(p.n / 4294967296)::bigint), 8, '0') || "
    "                   lpad(to_hex(trunc((p.n - trunc(p.n / 4294967296) * 4294967296) / p.seg)::bigint), 8, '0'))), "
    "           (SELECT nullif(min_recovery_end_timeline, 0) FROM pg_control_recovery()), "
    "           (SELECT timeline_id FROM pg_control_checkpoint()))) END";

}  // namespace

LocalPostgres::LocalPostgres(const KeeperConfig& config) : config_(config) {}

bool LocalPostgres::data_dir_exists() const { return file_exists(config_.pgdata + "/PG_VERSION"); }

std::optional<long> LocalPostgres::postmaster_pid() const {
    auto pidfile = support::read_file_if_exists(config_.pgdata + "/postmaster.pid");
    if (!pidfile) return std::nullopt;
    try {
        return std::stol(*pidfile);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool LocalPostgres::postmaster_alive() const {
    auto pid = postmaster_pid();
    return pid && process_alive(*pid);
}

bool LocalPostgres::postmaster_unreaped() const {
    auto pid = postmaster_pid();
    return pid && *pid > 0 && ::kill(static_cast<pid_t>(*pid), 0) == 0 && !process_alive(*pid);
}

std::string LocalPostgres::postgres_log_path() const { return support::server_log_path(config_.pgdata); }

pqxx::result LocalPostgres::with_connection(const std::function<pqxx::result(pqxx::connection&)>& fn) {
    try {
        if (!conn_) {
            std::string conninfo = "host=" + support::conninfo_quote(config_.socket_dir) +
                                   " port=" + std::to_string(config_.port) +
                                   " dbname=postgres connect_timeout=2 application_name=autofailover_keeper"
                                   " options='-c statement_timeout=10000 -c synchronous_commit=local'";
            conn_ = std::make_unique<pqxx::connection>(conninfo);
        }
        return fn(*conn_);
    } catch (const pqxx::broken_connection&) {
        conn_.reset();
        throw;
    } catch (const pqxx::sql_error&) {
        // The session may be fine, but a failed statement in a dying server often is not.
        conn_.reset();
        throw;
    }
}

pqxx::result LocalPostgres::sql(const std::string& query) {
    return with_connection([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx.exec(query);
    });
}

Observation LocalPostgres::observe() {
    Observation o;
    o.data_dir_exists = data_dir_exists();
    o.standby_signal = file_exists(config_.pgdata + "/standby.signal");
    o.running = o.data_dir_exists && postmaster_alive();
    if (o.running) {
        try {
            auto r = sql(std::string("SELECT pg_is_in_recovery(), "
                                     " CASE WHEN pg_is_in_recovery() "
                                     "  THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text "
                                     "  ELSE pg_current_wal_flush_lsn()::text END, ") +
                         kTimelineSql +
                         ", EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')");
            o.accepting = true;
            o.in_recovery = r[0][0].as<bool>();
            o.lsn = parse_lsn(r[0][1].c_str()).value_or(0);
            o.timeline = r[0][2].is_null() ? 0 : r[0][2].as<int>();
            o.wal_receiver_streaming = r[0][3].as<bool>();
            if (o.in_recovery) {
                auto replay = sql(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(), false), "
                    " (extract(epoch FROM greatest(interval '0', clock_timestamp() - "
                    "  pg_last_xact_replay_timestamp())) * 1000)::bigint");
                o.replay_caught_up = replay[0][0].as<bool>();
                if (!replay[0][1].is_null())
                    o.last_replayed_commit_age = std::chrono::milliseconds(replay[0][1].as<long long>());
            }
            if (!o.in_recovery) {
                auto rows = sql(
                    // A walsender stays 'streaming' until wal_sender_timeout after its standby vanished;
                    // a standby that sent no reply for two status intervals counts as gone ('silent').
                    "SELECT application_name, CASE WHEN reply_time >= now() - 2 * "
                    " current_setting('wal_receiver_status_interval')::interval THEN coalesce(state, '') "
                    " ELSE 'silent' END, coalesce(sync_state, ''), "
                    " coalesce(flush_lsn, '0/0')::text, "
                    " (extract(epoch FROM greatest(interval '0', clock_timestamp() - reply_time)) * 1000)::bigint "
                    "FROM pg_stat_replication "
                    "WHERE usename = 'autofailover_replicator'");
                for (const auto& row : rows) {
                    StandbyRow s;
                    s.application_name = row[0].c_str();
                    s.state = row[1].c_str();
                    s.sync_state = row[2].c_str();
                    s.flush_lsn = parse_lsn(row[3].c_str()).value_or(0);
                    if (!row[4].is_null()) s.reply_age = std::chrono::milliseconds(row[4].as<long long>());
                    o.standbys.push_back(std::move(s));
                }
            }
        } catch (const std::exception&) {
            o.accepting = false;  // starting up, shutting down or crashed: reported as running, not accepting
        }
    }
    if (!o.accepting && o.data_dir_exists) {
        if (auto cd = control_data()) {
            o.lsn = cd->checkpoint_lsn;
            o.timeline = cd->timeline;
        }
    }
    return o;
}

std::optional<ControlData> LocalPostgres::control_data() {
    const ToolRun run = pg_controldata_run(config_);
    auto r = support::run_child(run.argv, run.options);
    if (!r.ok()) return std::nullopt;
    ControlData cd;
    std::istringstream in(r.output);
    std::string line;
    auto value_of = [](const std::string& l) {
        auto colon = l.find(':');
        std::string v = colon == std::string::npos ? "" : l.substr(colon + 1);
        auto start = v.find_first_not_of(' ');
        return start == std::string::npos ? std::string() : v.substr(start);
    };
    while (std::getline(in, line)) {
        if (line.rfind("Database cluster state:", 0) == 0) cd.cluster_state = value_of(line);
        else if (line.rfind("Latest checkpoint location:", 0) == 0) cd.checkpoint_lsn = parse_lsn(value_of(line)).value_or(0);
        else if (line.rfind("Latest checkpoint's TimeLineID:", 0) == 0) cd.timeline = std::stoi(value_of(line));
        else if (line.rfind("Database system identifier:", 0) == 0) cd.system_identifier = value_of(line);
    }
    return cd;
}

void LocalPostgres::start(const std::function<void()>& tick, const std::function<bool()>& cancel) {
    conn_.reset();
    const ToolRun run = pg_ctl_start_run(config_, postgres_log_path(), tick, cancel);
    auto r = support::run_child(run.argv, run.options);
    if (r.cancelled) {
        stop("immediate");
        throw KeeperError(KeeperError::Kind::LocalPostgres, "start of Postgres cancelled and undone");
    }
    if (!r.ok())
        throw KeeperError(KeeperError::Kind::LocalPostgres,
                          "pg_ctl start failed (see " + postgres_log_path() + "): " + support::tail_of(r.output));
}

void LocalPostgres::stop(const std::string& mode, const std::function<void()>& tick) {
    conn_.reset();
    if (!postmaster_alive()) return;
    const ToolRun run = pg_ctl_stop_run(config_, mode, tick);
    auto r = support::run_child(run.argv, run.options);
    if (!r.ok() && postmaster_alive())
        throw KeeperError(KeeperError::Kind::LocalPostgres, "pg_ctl stop -m " + mode + " failed: " + support::tail_of(r.output));
}

void LocalPostgres::finish_crash_recovery(const std::function<void()>& tick) {
    if (postmaster_alive() || !data_dir_exists()) return;
    auto cd = control_data();
    if (!cd) throw KeeperError(KeeperError::Kind::LocalPostgres, "pg_controldata failed on " + config_.pgdata);
    if (cd->cluster_state.rfind("shut down", 0) == 0) return;
    const ToolRun run = single_user_recovery_run(config_, tick);
    auto r = support::run_child(run.argv, run.options);
    auto after = control_data();
    if (!r.ok() || !after || after->cluster_state.rfind("shut down", 0) != 0)
        throw KeeperError(KeeperError::Kind::LocalPostgres,
                          "crash recovery in single-user mode failed (state " + cd->cluster_state + "): " +
                              support::tail_of(r.output));
}

void LocalPostgres::promote(const std::function<void()>& tick) {
    conn_.reset();
    const ToolRun run = pg_ctl_promote_run(config_, tick);
    auto r = support::run_child(run.argv, run.options);
    if (!r.ok()) throw KeeperError(KeeperError::Kind::LocalPostgres, "pg_ctl promote failed: " + support::tail_of(r.output));
}

void LocalPostgres::reload() { sql("SELECT pg_reload_conf()"); }

}  // namespace autofailover::keeper
