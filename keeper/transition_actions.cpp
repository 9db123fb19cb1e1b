#include "keeper/transition_actions.h"

#include "keeper/atomic_file.h"
#include "keeper/backup.h"
#include "keeper/child_process.h"
#include "keeper/conninfo.h"
#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "keeper/postgres_files.h"
#include "keeper/rejoin.h"
#include "keeper/replication_auth.h"
#include "libautofailover/settings.h"  // replication_names.h needs FormationSettings
#include "libautofailover/replication_names.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>
#include <sys/stat.h>

namespace autofailover::keeper {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& message) { throw KeeperError(KeeperError::Kind::LocalPostgres, message); }

std::string quote_literal(LocalPostgres& pg, const std::string& value) {
    auto r = pg.sql_params("SELECT quote_literal($1::text)", value);
    return r[0][0].c_str();
}

void alter_system(LocalPostgres& pg, const std::string& name, const std::optional<std::string>& value) {
    if (value) pg.sql("ALTER SYSTEM SET " + name + " TO " + quote_literal(pg, *value));
    else pg.sql("ALTER SYSTEM RESET " + name);
}

// Polls `done` every 100 ms, ticking the monitor report, until true or timeout.
bool wait_until(ActionContext& ctx, milliseconds timeout, const std::function<bool()>& done) {
    const auto deadline = SteadyClock::now() + timeout;
    auto next_tick = SteadyClock::now() + ctx.config.timeouts.poll_period;
    for (;;) {
        try {
            if (done()) return true;
        } catch (const std::exception& e) {
            log_debug("node={} waiting: {}", ctx.config.name, e.what());
        }
        if (SteadyClock::now() >= deadline) return false;
        if (ctx.cancelled && ctx.cancelled()) fail("interrupted: the keeper is stopping");
        if (ctx.tick && SteadyClock::now() >= next_tick) {
            ctx.tick();
            next_tick = SteadyClock::now() + ctx.config.timeouts.poll_period;
        }
        std::this_thread::sleep_for(ctx.config.timeouts.local_check_interval);
    }
}

std::string ms_since(SteadyClock::time_point start) {
    return std::to_string(std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start).count()) + "ms";
}

bool in_recovery(LocalPostgres& pg) { return pg.sql("SELECT pg_is_in_recovery()")[0][0].as<bool>(); }

void ensure_running(ActionContext& ctx) {
    if (!ctx.pg.postmaster_alive()) ctx.pg.start(ctx.tick);
    if (!wait_until(ctx, ctx.config.timeouts.postgres_start_timeout, [&] {
            ctx.pg.sql("SELECT 1");
            return true;
        }))
        fail("Postgres started but does not accept connections");
}

const std::string& require_primary(ActionContext& ctx) {
    if (ctx.assignment.primary_host.empty() || ctx.assignment.primary_port == 0)
        throw KeeperError(KeeperError::Kind::MonitorError, "the monitor names no primary to follow yet");
    return ctx.assignment.primary_host;
}

bool slot_exists_on(const KeeperConfig& config, const std::string& host, int port, const std::string& slot) {
    pqxx::connection conn(source_conninfo(config, host, port));
    pqxx::nontransaction tx(conn);
    auto r = tx.exec_params("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot);
    return !r.empty();
}

void persist(ActionContext& ctx) {
    if (ctx.persist) ctx.persist();
}

// The data directory takes writes now: a later rejoin must pg_rewind it again, never
// discard it on the word of a rewind of an earlier life (rejoin_needs_base_backup).
void forget_failed_rejoin(ActionContext& ctx) {
    if (!ctx.state.rejoin_needs_base_backup) return;
    ctx.state.rejoin_needs_base_backup = false;
    persist(ctx);
}

// Puts the complete copy `temp` in place of PGDATA: PGDATA is either the old directory
// or a complete copy, never a half-written one. The old directory is deleted, or kept
// as `keep_old_as` when that is not empty.
void swap_in_new_copy(ActionContext& ctx, const std::string& temp, const std::string& keep_old_as) {
    const std::string& pgdata = ctx.config.pgdata;
    ::chmod(temp.c_str(), 0700);
    // The copy is durable before it is swapped in, and the swap before the old one goes.
    if (ctx.config.sync_new_data_directories) sync_data_directory(temp);
    const std::string old = keep_old_as.empty() ? pgdata + ".old" : keep_old_as;
    fs::remove_all(pgdata + ".old");
    save_local_hba(pgdata);  // the copy holds the primary's pg_hba.conf: this node's DBA lines come back below
    if (fs::exists(pgdata)) fs::rename(pgdata, old);
    fs::rename(temp, pgdata);
    if (ctx.config.sync_new_data_directories) fsync_directory(fs::path(pgdata).parent_path().string());
    if (restore_local_hba(pgdata)) log_info("node={} kept this node's own pg_hba.conf lines", ctx.config.name);
    if (keep_old_as.empty()) fs::remove_all(old);
    ctx.state.rejoin_needs_base_backup = false;  // a fresh copy follows its primary
    persist(ctx);
}

// The primary's system identifier (decimal), or "" when it cannot be read.
std::string primary_system_identifier(const KeeperConfig& config, const std::string& host, int port) {
    try {
        pqxx::connection conn(source_conninfo(config, host, port));
        pqxx::nontransaction tx(conn);
        return tx.exec("SELECT system_identifier::text FROM pg_control_system()")[0][0].c_str();
    } catch (const std::exception& e) {
        log_debug("node={} system identifier of {}:{} not read: {}", config.name, host, port, e.what());
        return "";
    }
}

// With backup integration (docs/backups.md): the latest pgBackRest backup of the
// primary's system restored into `temp` as a standby; it then replays the archive
// (restore_command) and streams through its slot. Returns false, with the reason
// logged, when there is no such backup or the restore failed: pg_basebackup then.
bool restore_from_backup(ActionContext& ctx, const std::string& host, int port, const std::string& temp) {
    const auto& name = ctx.config.name;
    const std::string& stanza = ctx.config.backup.stanza;
    std::optional<BackupSet> latest;
    try {
        const BackupInfo info = read_backup_info(ctx.config, ctx.config.timeouts.base_backup_timeout);
        const std::string system = primary_system_identifier(ctx.config, host, port);
        if (system.empty()) {
            // Cannot compare: the newest valid backup of the stanza's current database.
            for (auto it = info.backups.rbegin(); it != info.backups.rend() && !latest; ++it)
                if (!it->error && !info.databases.empty() && it->db_id == info.databases.back().first) latest = *it;
        } else {
            latest = latest_backup_of(info, system);
        }
        if (!latest) {
            log_info("node={} no pgBackRest backup of this formation in stanza {} ({}): building the standby with "
                     "pg_basebackup", name, stanza, info.status_message);
            return false;
        }
    } catch (const std::exception& e) {
        log_warn("node={} pgBackRest backups of stanza {} not readable ({}): building the standby with pg_basebackup",
                 name, stanza, e.what());
        return false;
    }
    fs::remove_all(temp);
    fs::create_directory(temp);
    ::chmod(temp.c_str(), 0700);
    ChildOptions options;
    options.timeout = ctx.config.timeouts.base_backup_timeout;
    options.tick = ctx.tick;
    options.tick_every = ctx.config.timeouts.poll_period;
    options.extra_env = {"LC_ALL=C"};
    options.cancel = ctx.cancelled;
    const auto started = SteadyClock::now();
    log_info("node={} restoring pgBackRest backup {} of stanza {} as a standby of {}:{}", name, latest->label, stanza,
             host, port);
    auto r = run_child(pgbackrest_argv(ctx.config.backup, "restore",
                                       {"--pg1-path=" + temp, "--type=standby", "--set=" + latest->label}),
                       options);
    if (r.cancelled) {
        fs::remove_all(temp);
        fail("pgbackrest restore interrupted: the keeper is stopping");
    }
    if (!r.ok()) {
        fs::remove_all(temp);
        log_warn("node={} pgbackrest restore of {} failed ({}): building the standby with pg_basebackup", name,
                 latest->label, tail_of(r.output));
        return false;
    }
    // pgBackRest wrote a restore_command for the temporary path; the keeper's own (autofailover.conf) applies.
    edit_auto_conf(temp, {{"restore_command", std::nullopt}});
    log_info("node={} standby built from pgBackRest backup {} (stanza {}) in {}", name, latest->label, stanza,
             ms_since(started));
    return true;
}

// A fresh copy of the primary into PGDATA: from the latest backup when backup
// integration is on and one exists, else pg_basebackup into <pgdata>.basebackup.
void base_backup(ActionContext& ctx, const std::string& host, int port, const std::string& keep_old_as = "") {
    const std::string slot = standby_name(ctx.state.node_id);
    if (!slot_exists_on(ctx.config, host, port, slot))
        throw KeeperError(KeeperError::Kind::MonitorError,
                          "the primary " + host + ":" + std::to_string(port) + " has no slot " + slot + " yet");
    const std::string& pgdata = ctx.config.pgdata;
    if (ctx.config.backup.enabled()) {
        const std::string restored = pgdata + ".restore";
        if (restore_from_backup(ctx, host, port, restored)) return swap_in_new_copy(ctx, restored, keep_old_as);
    }
    const std::string temp = pgdata + ".basebackup";
    fs::remove_all(temp);
    // --no-sync: one syncfs below instead of pg_basebackup's fsync of every file.
    std::vector<std::string> argv = {ctx.pg.tool("pg_basebackup"), "-D", temp, "-h", host, "-p", std::to_string(port),
                                     "-U", "autofailover_replicator", "-S", slot, "-X", "stream", "-c", "fast", "-w",
                                     "--no-sync"};
    if (!ctx.config.max_backup_rate.empty()) {
        argv.push_back("-r");
        argv.push_back(ctx.config.max_backup_rate);
    }
    ChildOptions options;
    options.timeout = ctx.config.timeouts.base_backup_timeout;
    options.tick = ctx.tick;
    options.tick_every = ctx.config.timeouts.poll_period;
    options.extra_env = {"PGAPPNAME=" + slot, "PGCONNECT_TIMEOUT=2"};
    for (auto& e : replication_client_env(ctx.config)) options.extra_env.push_back(e);
    options.cancel = ctx.cancelled;
    log_info("node={} pg_basebackup from {}:{} through slot {}", ctx.config.name, host, port, slot);
    auto r = run_child(argv, options);
    if (!r.ok()) {
        fs::remove_all(temp);
        fail("pg_basebackup from " + host + ":" + std::to_string(port) + " failed: " + tail_of(r.output));
    }
    swap_in_new_copy(ctx, temp, keep_old_as);
}

void drop_local_slots(LocalPostgres& pg) {
    pg.sql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active");
}

std::optional<WalReceiverView> wal_receiver(LocalPostgres& pg) {
    auto r = pg.sql("SELECT status, receive_start_lsn::text, flushed_lsn::text FROM pg_stat_wal_receiver");
    if (r.empty()) return std::nullopt;
    WalReceiverView v;
    v.status = r[0][0].is_null() ? "" : r[0][0].c_str();
    if (!r[0][1].is_null()) v.receive_start_lsn = parse_lsn(r[0][1].c_str());
    if (!r[0][2].is_null()) v.flushed_lsn = parse_lsn(r[0][2].c_str());
    return v;
}

void start_as_standby_of(ActionContext& ctx, const std::string& host, int port) {
    write_autofailover_conf(ctx.config);
    ensure_replication_access(ctx, false);
    write_standby_setup(ctx, host, port, true);
    ctx.pg.start(ctx.tick);
    // Report once streaming: a report sent before the walreceiver connected shows the primary no stream,
    // and both keepers would then report again only a poll_period later (bench/rejoin.py, standby path).
    const bool streams = wait_until(ctx, ctx.config.timeouts.standby_stream_wait, [&] {
        auto v = wal_receiver(ctx.pg);
        return v && v->status == "streaming";
    });
    if (!streams)
        log_debug("node={} walreceiver not streaming after standby_stream_wait ({}ms); reporting anyway",
                  ctx.config.name, ctx.config.timeouts.standby_stream_wait.count());
}

void set_sync_standby_names(ActionContext& ctx, const std::string& value) {
    alter_system(ctx.pg, "synchronous_standby_names", value);
    ctx.pg.reload();
}

// --- one function per KeeperAction ------------------------------------------------

void rewind_or_reinit(ActionContext& ctx);

void init_primary(ActionContext& ctx) {
    const std::string& pgdata = ctx.config.pgdata;
    if (!ctx.pg.data_dir_exists()) {
        if (fs::exists(pgdata) && !fs::is_empty(pgdata))
            fail(pgdata + " is not empty and holds no Postgres cluster; empty it or choose another --pgdata");
        ChildOptions options;
        options.timeout = ctx.config.timeouts.postgres_start_timeout;
        options.tick = ctx.tick;
        options.tick_every = ctx.config.timeouts.poll_period;
        options.extra_env = {"LC_ALL=C.UTF-8"};
        std::vector<std::string> argv = {ctx.pg.tool("initdb"), "-D", pgdata, "--auth-local=peer",
                                         "--auth-host=" + ctx.config.auth_method, "-E", "UTF8", "--no-instructions"};
        if (!ctx.config.sync_new_data_directories) argv.push_back("--no-sync");
        auto r = run_child(argv, options);
        if (!r.ok()) fail("initdb failed: " + tail_of(r.output));
        log_info("node={} initdb done in {}", ctx.config.name, pgdata);
    }
    write_autofailover_conf(ctx.config);
    ensure_replication_access(ctx, false);
    ensure_running(ctx);
    if (in_recovery(ctx.pg)) {
        // A former standby's data directory (dropped → single): it becomes the primary.
        ctx.pg.promote(ctx.tick);
        if (!wait_until(ctx, ctx.config.timeouts.promote_timeout, [&] { return !in_recovery(ctx.pg); }))
            fail("promotion did not finish within promote_timeout");
    }
    ctx.pg.sql(
        "DO $$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autofailover_replicator') THEN "
        "  CREATE ROLE autofailover_replicator LOGIN REPLICATION; END IF; "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autofailover_monitor') THEN "
        "  CREATE ROLE autofailover_monitor LOGIN CONNECTION LIMIT 2; END IF; "
        "END $$");
    set_replication_password(ctx.config);  // --auth scram-sha-256: standbys log in with it
    // What pg_rewind --source-server needs, instead of SUPERUSER.
    ctx.pg.sql(
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO autofailover_replicator;"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO autofailover_replicator;"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO autofailover_replicator;"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) "
        "  TO autofailover_replicator;");
    forget_failed_rejoin(ctx);
    alter_system(ctx.pg, "primary_conninfo", std::nullopt);
    alter_system(ctx.pg, "primary_slot_name", std::nullopt);
    set_sync_standby_names(ctx, "");
    maintain_replication_slots(ctx);
}

void init_standby(ActionContext& ctx) {
    const auto& host = require_primary(ctx);
    const int port = ctx.assignment.primary_port;
    if (ctx.pg.data_dir_exists() && ctx.pg.postmaster_alive()) return;  // re-run after a keeper crash
    if (ctx.pg.data_dir_exists()) {
        // Data left from an earlier life of this node: reuse it only if pg_rewind can
        // align it with the primary, else a fresh base backup.
        rewind_or_reinit(ctx);
        return;
    }
    base_backup(ctx, host, port);
    start_as_standby_of(ctx, host, port);
}

// Where a node that left the replication stream keeps a data directory we may not
// delete: "<pgdata>.diverged-<UTC time>".
std::string diverged_copy_path(const std::string& pgdata) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
    return pgdata + ".diverged-" + stamp;
}

// The primary's flush LSN, or nullopt when it does not answer.
std::optional<Lsn> primary_flush_lsn(ActionContext& ctx, const std::string& host, int port) {
    try {
        pqxx::connection conn(source_conninfo(ctx.config, host, port));
        pqxx::nontransaction tx(conn);
        return parse_lsn(tx.exec("SELECT pg_current_wal_flush_lsn()::text")[0][0].c_str());
    } catch (const std::exception& e) {
        log_debug("node={} primary {}:{} did not answer: {}", ctx.config.name, host, port, e.what());
        return std::nullopt;
    }
}

// Starts a rewound data directory as a standby of host:port and waits until it
// streams. Returns why it cannot follow that primary (it is then stopped), or
// nullopt once it streams. Throws, leaving the decision to a later try, when the
// cause may be passing: the primary does not answer, or Postgres itself fails to start.
std::optional<std::string> start_rewound_standby(ActionContext& ctx, const std::string& host, int port) {
    const std::string log_path = ctx.pg.server_log_path();
    ServerLogWatch watch(log_path, ServerLogWatch::end_of(log_path));
    std::optional<std::string> reason;
    auto stopped_because = [&](std::string why) {
        ctx.pg.stop("immediate", ctx.tick);
        return std::optional<std::string>(std::move(why));
    };
    write_autofailover_conf(ctx.config);
    ensure_replication_access(ctx, false);
    write_standby_setup(ctx, host, port, true);
    try {
        // A standby after pg_rewind accepts connections only once consistent, which may need
        // WAL the primary no longer has: the server log tells at once, pg_ctl would wait its timeout.
        ctx.pg.start(ctx.tick, [&] {
            if (ctx.cancelled && ctx.cancelled()) return true;
            if (!reason) reason = watch.unfollowable_reason();
            return reason.has_value();
        });
    } catch (const KeeperError& e) {
        if (ctx.cancelled && ctx.cancelled()) throw;
        if (!reason) reason = watch.unfollowable_reason();
        if (reason) return stopped_because(*reason);
        // pg_ctl gave up waiting while the postmaster runs: it never became consistent.
        if (ctx.pg.postmaster_alive())
            return stopped_because("it did not become a consistent standby within postgres_start_timeout (" +
                                   std::to_string(ctx.config.timeouts.postgres_start_timeout.count()) + "ms)");
        throw;  // Postgres did not start at all: a new base backup would not start either
    }
    log_debug("node={} rewound standby started", ctx.config.name);
    const std::optional<Lsn> primary_lsn = primary_flush_lsn(ctx, host, port);
    log_debug("node={} primary flush lsn {}", ctx.config.name, primary_lsn ? format_lsn(*primary_lsn) : "none");
    std::string last_view;
    const bool streams = wait_until(ctx, ctx.config.timeouts.rejoin_stream_timeout, [&] {
        if (!reason) reason = watch.unfollowable_reason();
        auto v = wal_receiver(ctx.pg);
        if (debug_enabled()) {
            std::string text = v ? v->status + " start=" + (v->receive_start_lsn ? format_lsn(*v->receive_start_lsn) : "-") +
                                       " flushed=" + (v->flushed_lsn ? format_lsn(*v->flushed_lsn) : "-")
                                 : "no walreceiver";
            if (text != last_view) log_debug("node={} walreceiver {}", ctx.config.name, text);
            last_view = text;
        }
        return reason.has_value() || streams_from_primary(v, primary_lsn);
    });
    log_debug("node={} streams={}", ctx.config.name, streams);
    if (reason) return stopped_because(*reason);
    if (streams) return std::nullopt;
    if (!primary_lsn)
        fail("the primary " + host + ":" + std::to_string(port) + " did not answer while the rewound standby waited "
             "to stream from it; trying again");
    return stopped_because("it did not stream from the primary within rejoin_stream_timeout (" +
                           std::to_string(ctx.config.timeouts.rejoin_stream_timeout.count()) + "ms)");
}

// What the walreceiver received may end exactly at a segment boundary; that segment has no status file
// then and would be missing from the archive after the promotion (netns row B2, docs/backups.md).
void queue_last_received_segment(ActionContext& ctx) {
    try {
        const auto r = ctx.pg.sql("SELECT pg_last_wal_receive_lsn()::text, "
                                  "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')");
        if (r.empty() || r[0][0].is_null()) return;
        const std::optional<Lsn> received = parse_lsn(r[0][0].c_str());
        if (received && queue_unclosed_segment(ctx.config.pgdata, *received, r[0][1].as<std::uint64_t>()))
            log_info("node={} state={} the last received WAL segment (ending at {}) queued for archiving before promotion",
                     ctx.config.name, to_string(ctx.state.current_state), format_lsn(*received));
    } catch (const std::exception& e) {
        log_warn("node={} state={} could not check the last received WAL segment: {}", ctx.config.name,
                 to_string(ctx.state.current_state), e.what());
    }
}

void drop_local_slots_once_up(ActionContext& ctx) {
    // Slots copied from, or left over by, the old primary hold back WAL and xmin.
    if (wait_until(ctx, ctx.config.timeouts.postgres_start_timeout, [&] {
            ctx.pg.sql("SELECT 1");
            return true;
        }))
        drop_local_slots(ctx.pg);
}

void reinit_from_primary(ActionContext& ctx, const std::string& host, int port, const std::string& keep_old_as = "") {
    base_backup(ctx, host, port, keep_old_as);
    start_as_standby_of(ctx, host, port);
    drop_local_slots_once_up(ctx);
}

// A former primary (or a node back from maintenance or an earlier life) becomes a
// standby of the current primary. When may its data directory be thrown away?
//  - After pg_rewind succeeded ("rewound" or "no rewind required") it holds nothing
//    the primary lacks: pg_rewind cut it back to where the histories forked, or
//    proved it never went past that point. If it still cannot follow (the WAL it
//    needs is gone, histories disagree), a fresh base backup loses nothing more.
//    rejoin_needs_base_backup is set only in that case, so acting on it after a
//    keeper restart (without rewinding again) is just as safe.
//  - When pg_rewind fails we cannot tell: the directory may hold commits that an
//    asynchronous old primary never sent. It is renamed <pgdata>.diverged-<time>
//    for the DBA, never deleted, and the node rejoins from a fresh base backup.
void rewind_or_reinit(ActionContext& ctx) {
    const auto& host = require_primary(ctx);
    const int port = ctx.assignment.primary_port;
    const std::string& name = ctx.config.name;
    const std::string state(to_string(ctx.state.current_state));
    ctx.pg.stop("fast", ctx.tick);
    if (!ctx.pg.data_dir_exists()) return reinit_from_primary(ctx, host, port);
    if (ctx.state.rejoin_needs_base_backup) {
        log_warn("node={} state={} the rewound data directory could not follow the primary before; "
                 "re-initializing it from a fresh base backup of {}:{}", name, state, host, port);
        return reinit_from_primary(ctx, host, port);
    }
    // pg_rewind runs crash recovery itself (single-user) when the target was not shut down cleanly;
    // standby.signal would make that refuse, and the standby setup is rewritten afterwards anyway.
    remove_standby_signal(ctx.config.pgdata);
    // pg_rewind copies the primary's pg_hba.conf; this node's DBA lines come back after it.
    save_local_hba(ctx.config.pgdata);
    ChildOptions options;
    options.timeout = ctx.config.timeouts.rewind_timeout;
    options.tick = ctx.tick;
    options.tick_every = ctx.config.timeouts.poll_period;
    options.extra_env = {"LC_ALL=C"};
    options.cancel = ctx.cancelled;
    const auto rewind_started = SteadyClock::now();
    // --no-sync: one syncfs below instead of pg_rewind's fsync of every file in PGDATA (seconds on
    // this shared VM); nothing starts from the directory before it is durable.
    std::vector<std::string> rewind_argv = {ctx.pg.tool("pg_rewind"), "--target-pgdata", ctx.config.pgdata,
                                            "--source-server", source_conninfo(ctx.config, host, port), "--no-sync"};
    if (ctx.config.backup.enabled()) {
        // WAL the old primary recycled since the fork comes from the archive: pg_rewind runs the
        // restore_command of autofailover.conf, written now so it is this keeper.json's.
        write_autofailover_conf(ctx.config);
        rewind_argv.push_back("--restore-target-wal");
    }
    auto r = run_child(rewind_argv, options);
    if (r.cancelled) fail("pg_rewind interrupted: the keeper is stopping");
    if (!r.ok() && !primary_flush_lsn(ctx, host, port))
        fail("pg_rewind from " + host + ":" + std::to_string(port) + " failed and the primary does not answer; "
             "trying again: " + tail_of(r.output));
    if (!r.ok()) {
        const std::string keep = diverged_copy_path(ctx.config.pgdata);
        log_warn("node={} state={} pg_rewind from {}:{} failed ({}); keeping the data directory as {} and "
                 "re-initializing from a fresh base backup", name, state, host, port, tail_of(r.output), keep);
        return reinit_from_primary(ctx, host, port, keep);
    }
    if (restore_local_hba(ctx.config.pgdata)) log_info("node={} state={} kept this node's own pg_hba.conf lines", name, state);
    sync_data_directory(ctx.config.pgdata);
    log_info("node={} state={} pg_rewind{} from {}:{} done in {}: {}", name, state,
             ctx.config.backup.enabled() ? " (--restore-target-wal)" : "", host, port, ms_since(rewind_started),
             tail_of(r.output, 120));
    const auto reason = start_rewound_standby(ctx, host, port);
    if (!reason) return drop_local_slots_once_up(ctx);
    ctx.state.rejoin_needs_base_backup = true;  // a keeper restarted from here does not rewind again
    persist(ctx);
    log_warn("node={} state={} the rewound data directory cannot follow the primary {}:{}: {}; "
             "re-initializing it from a fresh base backup", name, state, host, port, *reason);
    reinit_from_primary(ctx, host, port);
}

void follow_primary(ActionContext& ctx) {
    const auto& host = require_primary(ctx);
    const int port = ctx.assignment.primary_port;
    if (!ctx.pg.postmaster_alive()) {
        start_as_standby_of(ctx, host, port);
        return;
    }
    ensure_running(ctx);
    if (!in_recovery(ctx.pg))
        fail("Postgres is not in recovery: a former primary must be rewound, not re-pointed");
    // PG 15 re-reads primary_conninfo on reload and restarts the walreceiver;
    // recovery_target_timeline defaults to latest, so it follows the promotion.
    alter_system(ctx.pg, "primary_conninfo",
                 replication_conninfo(ctx.config, host, port, standby_name(ctx.state.node_id)));
    alter_system(ctx.pg, "primary_slot_name", standby_name(ctx.state.node_id));
    ctx.pg.reload();
}

void stop_replication(ActionContext& ctx) {
    ensure_running(ctx);
    if (!in_recovery(ctx.pg)) return;  // nothing streams into a primary
    alter_system(ctx.pg, "primary_conninfo", "");
    ctx.pg.reload();
    if (!wait_until(ctx, ctx.config.timeouts.stop_replication_timeout, [&] {
            return ctx.pg.sql("SELECT count(*) FROM pg_stat_wal_receiver")[0][0].as<int>() == 0;
        }))
        fail("the walreceiver did not stop within stop_replication_timeout");
}

void fast_forward(ActionContext& ctx) {
    const auto& a = ctx.assignment;
    if (a.upstream_host.empty() || !a.upstream_lsn)
        throw KeeperError(KeeperError::Kind::MonitorError, "the monitor names no upstream standby to fast-forward from");
    ensure_running(ctx);
    if (!in_recovery(ctx.pg)) fail("fast_forward needs a standby, but Postgres is not in recovery");
    const std::string target = format_lsn(*a.upstream_lsn);
    alter_system(ctx.pg, "primary_conninfo",
                 replication_conninfo(ctx.config, a.upstream_host, a.upstream_port, standby_name(ctx.state.node_id)));
    alter_system(ctx.pg, "primary_slot_name", std::nullopt);  // the upstream standby keeps no slot for us
    ctx.pg.reload();
    bool reached = wait_until(ctx, ctx.config.timeouts.fast_forward_timeout, [&] {
        auto r = ctx.pg.sql_params("SELECT coalesce(pg_last_wal_receive_lsn() >= $1::pg_lsn, false)", target);
        return r[0][0].as<bool>();
    });
    alter_system(ctx.pg, "primary_conninfo", "");
    ctx.pg.reload();
    if (!reached) fail("fast-forward did not reach " + target + " from " + a.upstream_host + " in time");
}

void promote(ActionContext& ctx) {
    ensure_running(ctx);
    if (in_recovery(ctx.pg)) {
        // Slots made while still a standby reserve WAL from its last restartpoint, which is
        // no later than where a rewound old primary resumes (its last checkpoint before the
        // fork, or its end of WAL); made after promotion they would start at the new
        // checkpoint, and that checkpoint removes the older segments (docs/keeper.md).
        // Best effort: the promotion must not wait for it.
        try {
            maintain_replication_slots(ctx);
        } catch (const std::exception& e) {
            log_warn("node={} state={} slots not created before promotion (after it, then): {}", ctx.config.name,
                     to_string(ctx.state.current_state), e.what());
        }
        if (ctx.config.backup.enabled()) {
            // Picked up by the archiver, which starts with the promotion (docs/backups.md).
            const int marked = requeue_received_segments(ctx.config.pgdata);
            log_info("node={} state={} {} received WAL segments queued for archiving again before promotion",
                     ctx.config.name, to_string(ctx.state.current_state), marked);
            queue_last_received_segment(ctx);
        }
        ctx.pg.promote(ctx.tick);
        if (!wait_until(ctx, ctx.config.timeouts.promote_timeout, [&] { return !in_recovery(ctx.pg); }))
            fail("promotion did not finish within promote_timeout");
    }
    forget_failed_rejoin(ctx);
    // The checkpoint records the new timeline, so pg_rewind of the old primary sees it.
    ctx.pg.sql("CHECKPOINT");
    alter_system(ctx.pg, "primary_conninfo", std::nullopt);
    alter_system(ctx.pg, "primary_slot_name", std::nullopt);
    set_sync_standby_names(ctx, "");
    maintain_replication_slots(ctx);
}

void disable_sync_rep(ActionContext& ctx) {
    ensure_running(ctx);
    set_sync_standby_names(ctx, "");
}

void apply_settings(ActionContext& ctx) {
    // The monitor takes apply_settings/primary as proof of synchronous replication:
    // never reach them with an empty list (the monitor then moves the goal back).
    if (ctx.assignment.synchronous_standby_names.empty())
        fail("the monitor lists no synchronous standby: not applying an empty synchronous_standby_names");
    ensure_running(ctx);
    set_sync_standby_names(ctx, ctx.assignment.synchronous_standby_names);
}

void enable_sync_rep(ActionContext& ctx) {
    apply_settings(ctx);
    auto wanted = parse_synchronous_standby_names(ctx.assignment.synchronous_standby_names);
    if (wanted.count == 0) return;
    const std::string target = ctx.pg.sql("SELECT pg_current_wal_flush_lsn()::text")[0][0].c_str();
    std::set<std::string> names(wanted.names.begin(), wanted.names.end());
    bool caught_up = wait_until(ctx, ctx.config.timeouts.sync_rep_wait_timeout, [&] {
        auto rows = ctx.pg.sql_params(
            "SELECT application_name FROM pg_stat_replication "
            "WHERE usename = 'autofailover_replicator' AND sync_state IN ('sync', 'quorum') "
            "AND flush_lsn >= $1::pg_lsn",
            target);
        int count = 0;
        for (const auto& row : rows)
            if (names.count(row[0].c_str())) ++count;
        return count >= wanted.count;
    });
    if (!caught_up)
        fail("synchronous standbys (" + ctx.assignment.synchronous_standby_names + ") did not reach " + target +
             " within sync_rep_wait_timeout");
}

void stop_postgres(ActionContext& ctx) {
    if (!ctx.pg.postmaster_alive()) {
        // Crashed before it drained: the LSN this node reports when stopped is pg_control's
        // checkpoint, which lags the WAL it wrote (and standbys may have acknowledged). A
        // switchover candidate compared with that lagging LSN could miss acknowledged commits.
        ctx.pg.finish_crash_recovery(ctx.tick);
        return;
    }
    try {
        ctx.pg.sql("CHECKPOINT");  // a short shutdown checkpoint, so the stop is quick
    } catch (const std::exception& e) {
        log_debug("node={} checkpoint before stop failed: {}", ctx.config.name, e.what());
    }
    // Fast shutdown: walsenders send all WAL up to the shutdown checkpoint to connected standbys.
    ctx.pg.stop("fast", ctx.tick);
}

void fence(ActionContext& ctx) { ctx.pg.stop("immediate", ctx.tick); }

void resume_as_primary(ActionContext& ctx) {
    remove_standby_signal(ctx.config.pgdata);
    write_autofailover_conf(ctx.config);
    ensure_running(ctx);
    if (in_recovery(ctx.pg)) fail("Postgres came back in recovery; it cannot resume as the primary");
    forget_failed_rejoin(ctx);
    set_sync_standby_names(ctx, ctx.assignment.synchronous_standby_names);
    ctx.state.fenced_at.reset();
}

void release_for_maintenance(ActionContext& ctx) {
    log_info("node={} Postgres is left to the DBA until maintenance ends", ctx.config.name);
}

void drop_node(ActionContext& ctx) {
    stop_postgres(ctx);
    ctx.state.dropped = true;
}

}  // namespace

void ensure_replication_access(ActionContext& ctx, bool reload_if_changed) {
    if (ctx.config.skip_pg_hba) return;  // --skip-pg-hba: the DBA writes every line (docs/clients.md)
    std::vector<std::string> hosts = {ctx.config.hostname};
    for (const auto& o : ctx.others) hosts.push_back(o.host);
    const std::vector<std::string> monitors = conninfo_hosts(ctx.config.monitor_uri);
    auto lines = hba_lines(hosts, monitors.empty() ? std::string() : monitors.front(), ctx.config.auth_method,
                           ssl_enabled(ctx.config));
    // Replicated monitors (docs/monitor-ha.md): whichever leads probes the nodes.
    for (std::size_t i = 1; i < monitors.size(); ++i)
        for (auto& line : hba_lines({}, monitors[i], ctx.config.auth_method, ssl_enabled(ctx.config)))
            if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
    // After the replication and probe lines, which keep the keeper's roles to the group's hosts.
    for (auto& line : client_hba_lines(ctx.config, ctx.state.formation_clients)) lines.push_back(std::move(line));
    if (write_hba_block(ctx.config.pgdata, lines)) {
        // Logged when the block changes, so once per change of the group, not every period.
        for (const auto& host : hosts_refused_by_hba(hosts))
            log_error("node={} group host \"{}\" is neither an IP address nor a host name: no pg_hba.conf line for it",
                      ctx.config.name, printable(host));
        if (reload_if_changed && ctx.pg.postmaster_alive()) {
            log_info("node={} pg_hba.conf updated for {} group hosts and {} client networks (+{} formation-wide)",
                     ctx.config.name, hosts.size(), ctx.config.allow_clients.size(),
                     ctx.state.formation_clients.networks.size());
            ctx.pg.reload();
        }
    }
}

void maintain_replication_slots(ActionContext& ctx) {
    std::set<std::string> wanted;
    for (const auto& o : ctx.others) wanted.insert(standby_name(o.node_id));
    std::set<std::string> existing;
    for (const auto& row : ctx.pg.sql("SELECT slot_name, active FROM pg_replication_slots "
                                      "WHERE slot_type = 'physical' AND slot_name LIKE 'autofailover\\_node\\_%'")) {
        std::string name = row[0].c_str();
        existing.insert(name);
        if (!wanted.count(name) && !row[1].as<bool>()) {
            ctx.pg.sql_params("SELECT pg_drop_replication_slot($1)", name);
            log_info("node={} dropped replication slot {} (node removed)", ctx.config.name, name);
        }
    }
    for (const auto& name : wanted) {
        if (existing.count(name)) continue;
        ctx.pg.sql_params("SELECT pg_create_physical_replication_slot($1, true)", name);
        log_info("node={} created replication slot {}", ctx.config.name, name);
    }
}

void drop_standby_slots(ActionContext& ctx) {
    // Standbys keep no slots; ones made just before a promotion that did not happen would
    // hold WAL on this standby for ever.
    auto dropped = ctx.pg.sql(
        "SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE NOT active AND slot_type = 'physical' AND slot_name LIKE 'autofailover\\_node\\_%'");
    for (const auto& row : dropped)
        log_info("node={} state={} dropped replication slot {} (a standby keeps none)", ctx.config.name,
                 to_string(ctx.state.current_state), row[0].c_str());
}

void rebuild_unfollowable_standby(ActionContext& ctx, const std::string& reason) {
    const auto& host = require_primary(ctx);
    const int port = ctx.assignment.primary_port;
    // Only a removed segment leaves nothing of value behind: anything else this
    // directory holds past the fork may be writes nobody else has.
    const bool wal_gone = reason.find("already removed WAL") != std::string::npos;
    const std::string keep = wal_gone ? std::string() : diverged_copy_path(ctx.config.pgdata);
    log_warn("node={} state={} cannot follow the primary {}:{}: {}; re-initializing from a fresh base backup{}",
             ctx.config.name, to_string(ctx.state.current_state), host, port, reason,
             keep.empty() ? "" : " (the old data directory is kept as " + keep + ")");
    ctx.pg.stop("fast", ctx.tick);
    reinit_from_primary(ctx, host, port, keep);
}

bool ensure_following_primary(ActionContext& ctx) {
    if (ctx.assignment.primary_host.empty() || ctx.assignment.primary_port == 0) return false;
    const std::string slot = standby_name(ctx.state.node_id);
    const std::string wanted = replication_conninfo(ctx.config, ctx.assignment.primary_host, ctx.assignment.primary_port, slot);
    auto r = ctx.pg.sql("SELECT pg_is_in_recovery(), current_setting('primary_conninfo'), "
                        "current_setting('primary_slot_name')");
    if (!r[0][0].as<bool>()) return false;
    if (wanted == r[0][1].c_str() && slot == r[0][2].c_str()) return false;
    alter_system(ctx.pg, "primary_conninfo", wanted);
    alter_system(ctx.pg, "primary_slot_name", slot);
    ctx.pg.reload();
    return true;
}

void write_standby_setup(ActionContext& ctx, const std::string& host, int port, bool with_slot) {
    const std::string name = standby_name(ctx.state.node_id);
    edit_auto_conf(ctx.config.pgdata, {{"primary_conninfo", replication_conninfo(ctx.config, host, port, name)},
                                       {"primary_slot_name", with_slot ? std::optional<std::string>(name) : std::nullopt},
                                       {"synchronous_standby_names", std::nullopt},
                                       {"recovery_target_timeline", std::nullopt}});
    write_standby_signal(ctx.config.pgdata);
}

void run_action(KeeperAction action, ActionContext& ctx) {
    switch (action) {
        case KeeperAction::None: return;
        case KeeperAction::InitPrimary: return init_primary(ctx);
        case KeeperAction::InitStandby: return init_standby(ctx);
        case KeeperAction::RewindOrReinit: return rewind_or_reinit(ctx);
        case KeeperAction::FollowPrimary: return follow_primary(ctx);
        case KeeperAction::StopReplication: return stop_replication(ctx);
        case KeeperAction::FastForward: return fast_forward(ctx);
        case KeeperAction::Promote: return promote(ctx);
        case KeeperAction::DisableSyncRep: return disable_sync_rep(ctx);
        case KeeperAction::ApplySettings: return apply_settings(ctx);
        case KeeperAction::EnableSyncRep: return enable_sync_rep(ctx);
        case KeeperAction::StopPostgres: return stop_postgres(ctx);
        case KeeperAction::Fence: return fence(ctx);
        case KeeperAction::ResumeAsPrimary: return resume_as_primary(ctx);
        case KeeperAction::ReleaseForMaintenance: return release_for_maintenance(ctx);
        case KeeperAction::DropNode: return drop_node(ctx);
    }
}

}  // namespace autofailover::keeper
