#include "keeper/base_backup.h"

#include "support/atomic_file.h"
#include "keeper/backup.h"
#include "support/child_process.h"
#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "keeper/postgres_files.h"
#include "keeper/postgres_tools.h"
#include "keeper/replication_slots.h"
#include "keeper/standby_setup.h"
#include "libautofailover/settings.h"  // replication_names.h needs FormationSettings
#include "libautofailover/replication_names.h"

#include <pqxx/pqxx>

#include <ctime>
#include <filesystem>
#include <sys/stat.h>

namespace autofailover::keeper {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

// Puts the complete copy `temp` in place of PGDATA: PGDATA is either the old directory
// or a complete copy, never a half-written one. The old directory is deleted, or kept
// as `keep_old_as` when that is not empty.
void swap_in_new_copy(ActionContext& ctx, const std::string& temp, const std::string& keep_old_as) {
    const std::string& pgdata = ctx.config.pgdata;
    ::chmod(temp.c_str(), 0700);
    // The copy is durable before it is swapped in, and the swap before the old one goes.
    if (ctx.config.sync_new_data_directories) support::sync_data_directory(temp);
    const std::string old = keep_old_as.empty() ? pgdata + ".old" : keep_old_as;
    fs::remove_all(pgdata + ".old");
    save_local_hba(pgdata);  // the copy holds the primary's pg_hba.conf: this node's DBA lines come back below
    if (fs::exists(pgdata)) fs::rename(pgdata, old);
    fs::rename(temp, pgdata);
    if (ctx.config.sync_new_data_directories) support::fsync_directory(fs::path(pgdata).parent_path().string());
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
    support::ChildOptions options = tool_options(ctx.config, ctx.config.timeouts.base_backup_timeout, ctx.tick, ctx.cancelled);
    options.extra_env = {"LC_ALL=C"};
    const auto started = SteadyClock::now();
    log_info("node={} restoring pgBackRest backup {} of stanza {} as a standby of {}:{}", name, latest->label, stanza,
             host, port);
    auto r = support::run_child(pgbackrest_argv(ctx.config.backup, "restore",
                                       {"--pg1-path=" + temp, "--type=standby", "--set=" + latest->label}),
                       options);
    if (r.cancelled) {
        fs::remove_all(temp);
        fail("pgbackrest restore interrupted: the keeper is stopping");
    }
    if (!r.ok()) {
        fs::remove_all(temp);
        log_warn("node={} pgbackrest restore of {} failed ({}): building the standby with pg_basebackup", name,
                 latest->label, support::tail_of(r.output));
        return false;
    }
    // pgBackRest wrote a restore_command for the temporary path; the keeper's own (autofailover.conf) applies.
    edit_auto_conf(temp, {{"restore_command", std::nullopt}});
    log_info("node={} standby built from pgBackRest backup {} (stanza {}) in {}", name, latest->label, stanza,
             ms_since(started));
    return true;
}

}  // namespace

void base_backup(ActionContext& ctx, const std::string& host, int port, const std::string& keep_old_as) {
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
    const ToolRun run = pg_basebackup_run(ctx.config, host, port, slot, temp, ctx.tick, ctx.cancelled);
    log_info("node={} pg_basebackup from {}:{} through slot {}", ctx.config.name, host, port, slot);
    auto r = support::run_child(run.argv, run.options);
    if (!r.ok()) {
        fs::remove_all(temp);
        fail("pg_basebackup from " + host + ":" + std::to_string(port) + " failed: " + support::tail_of(r.output));
    }
    swap_in_new_copy(ctx, temp, keep_old_as);
}

void reinit_from_primary(ActionContext& ctx, const std::string& host, int port, const std::string& keep_old_as) {
    base_backup(ctx, host, port, keep_old_as);
    start_as_standby_of(ctx, host, port);
    drop_local_slots_once_up(ctx);
}

std::string diverged_copy_path(const std::string& pgdata) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
    return pgdata + ".diverged-" + stamp;
}

}  // namespace autofailover::keeper
