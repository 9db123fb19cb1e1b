#include "keeper/transition_actions.h"

#include "support/atomic_file.h"
#include "keeper/backup.h"
#include "keeper/base_backup.h"
#include "support/child_process.h"
#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "keeper/postgres_files.h"
#include "keeper/postgres_tools.h"
#include "keeper/rejoin.h"
#include "keeper/replication_auth.h"
#include "keeper/replication_slots.h"
#include "keeper/standby_setup.h"
#include "libautofailover/settings.h"  // replication_names.h needs FormationSettings
#include "libautofailover/replication_names.h"

#include <filesystem>
#include <set>

namespace autofailover::keeper {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

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
        const ToolRun run = initdb_run(ctx.config, ctx.tick);
        auto r = support::run_child(run.argv, run.options);
        if (!r.ok()) fail("initdb failed: " + support::tail_of(r.output));
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
    const auto rewind_started = SteadyClock::now();
    // WAL the old primary recycled since the fork comes from the archive: pg_rewind runs the
    // restore_command of autofailover.conf, written now so it is this keeper.json's.
    if (ctx.config.backup.enabled()) write_autofailover_conf(ctx.config);
    const ToolRun run = pg_rewind_run(ctx.config, host, port, ctx.config.backup.enabled(), ctx.tick, ctx.cancelled);
    auto r = support::run_child(run.argv, run.options);
    if (r.cancelled) fail("pg_rewind interrupted: the keeper is stopping");
    if (!r.ok() && !primary_flush_lsn(ctx, host, port))
        fail("pg_rewind from " + host + ":" + std::to_string(port) + " failed and the primary does not answer; "
             "trying again: " + support::tail_of(r.output));
    if (!r.ok()) {
        const std::string keep = diverged_copy_path(ctx.config.pgdata);
        log_warn("node={} state={} pg_rewind from {}:{} failed ({}); keeping the data directory as {} and "
                 "re-initializing from a fresh base backup", name, state, host, port, support::tail_of(r.output), keep);
        return reinit_from_primary(ctx, host, port, keep);
    }
    if (restore_local_hba(ctx.config.pgdata)) log_info("node={} state={} kept this node's own pg_hba.conf lines", name, state);
    support::sync_data_directory(ctx.config.pgdata);
    log_info("node={} state={} pg_rewind{} from {}:{} done in {}: {}", name, state,
             ctx.config.backup.enabled() ? " (--restore-target-wal)" : "", host, port, ms_since(rewind_started),
             support::tail_of(r.output, 120));
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
    // recovery_target_timeline defaults to latest, so the restarted walreceiver follows the promotion.
    point_standby_at(ctx, host, port);
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
