// autoctl perform backup | show backups: pgBackRest (docs/backups.md).
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"

#include "keeper/backup.h"
#include "keeper/keeper.h"
#include "keeper/keeper_loop.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

namespace autoctl {

namespace {

namespace keeper = autofailover::keeper;

// How long one pgBackRest command may run (a full backup of a big database takes hours).
constexpr int kDefaultBackupTimeoutSeconds = 6 * 3600;
constexpr int kInfoTimeoutSeconds = 120;

struct BackupOptions {
    keeper::BackupRequest request;
    int timeout_seconds = kDefaultBackupTimeoutSeconds;
};

struct ShowBackupsOptions {
    std::string pgdata;
    std::string state_dir;
    bool json = false;
};

std::string utc(std::int64_t epoch) {
    if (epoch <= 0) return "-";
    const std::time_t t = static_cast<std::time_t>(epoch);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%SZ", &tm);
    return text;
}

std::string human_size(std::uint64_t bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    return fmt::format(unit == 0 ? "{:.0f}{}" : "{:.1f}{}", value, units[unit]);
}

nlohmann::json info_to_json(const keeper::BackupInfo& info) {
    nlohmann::json backups = nlohmann::json::array();
    for (const auto& b : info.backups)
        backups.push_back({{"label", b.label}, {"type", b.type}, {"start", utc(b.start_epoch)},
                           {"stop", utc(b.stop_epoch)}, {"size_bytes", b.size}, {"repo_bytes", b.repo_size},
                           {"wal_start", b.wal_start}, {"wal_stop", b.wal_stop}, {"lsn_start", b.lsn_start},
                           {"lsn_stop", b.lsn_stop}, {"db_id", b.db_id}, {"error", b.error}});
    nlohmann::json archives = nlohmann::json::array();
    for (const auto& a : info.archives) archives.push_back({{"db_id", a.db_id}, {"min", a.min}, {"max", a.max}});
    nlohmann::json dbs = nlohmann::json::array();
    for (const auto& [id, system] : info.databases) dbs.push_back({{"db_id", id}, {"system_identifier", system}});
    return {{"stanza", info.stanza}, {"status_code", info.status_code}, {"status", info.status_message},
            {"backups", backups}, {"archives", archives}, {"databases", dbs}};
}

std::string render_info(const keeper::BackupInfo& info) {
    std::string out = fmt::format("stanza {}: {} (status {})\n", info.stanza, info.status_message, info.status_code);
    if (!info.backups.empty()) {
        out += fmt::format("{:<26} {:<5} {:<21} {:>8} {:>9} {:>9}  {}\n", "label", "type", "started", "seconds", "size",
                           "stored", "WAL start .. stop");
        for (const auto& b : info.backups)
            out += fmt::format("{:<26} {:<5} {:<21} {:>8} {:>9} {:>9}  {} .. {}{}\n", b.label, b.type, utc(b.start_epoch),
                               b.stop_epoch - b.start_epoch, human_size(b.size), human_size(b.repo_size), b.wal_start,
                               b.wal_stop, b.error ? " (ERROR)" : "");
    }
    for (const auto& a : info.archives) out += fmt::format("archive of db {}: {} .. {}\n", a.db_id, a.min, a.max);
    return out;
}

}  // namespace

void add_backup_commands(CLI::App& app) {
    auto b = std::make_shared<BackupOptions>();
    CLI::App* perform = app.get_subcommand("perform");
    CLI::App* backup = perform->add_subcommand(
        "backup", "pgBackRest backup of the formation, copied from a streaming standby by default (docs/backups.md)");
    backup->add_option("--pgdata", b->request.pgdatas,
                       "Data directory of a node on this host (repeatable): the primary's is required, a streaming "
                       "standby's lets pgBackRest copy from it")
        ->required()
        ->take_all();
    backup->add_option("--from", b->request.from, "standby (--backup-standby) or primary")
        ->capture_default_str()
        ->check(CLI::IsMember({"standby", "primary"}));
    backup->add_option("--type", b->request.type, "full, diff or incr")
        ->capture_default_str()
        ->check(CLI::IsMember({"full", "diff", "incr"}));
    backup->add_option("--timeout", b->timeout_seconds, "Seconds each pgBackRest command may run")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    backup->callback([b] {
        b->request.timeout = std::chrono::seconds(b->timeout_seconds);
        try {
            const auto out = keeper::perform_backup(b->request);
            std::cout << fmt::format("backup {} done in {:.1f}s: files copied from {}, primary {}\n",
                                     out.label.empty() ? "(label unknown)" : out.label, out.seconds, out.copied_from,
                                     out.primary);
            if (!out.note.empty()) std::cerr << "autoctl: " << out.note << "\n";
        } catch (const keeper::KeeperError& e) {
            throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
        }
    });

    auto s = std::make_shared<ShowBackupsOptions>();
    CLI::App* show = app.get_subcommand("show");
    CLI::App* backups =
        show->add_subcommand("backups", "pgBackRest backups and WAL archive of the node's stanza (pgbackrest info)");
    backups->add_option("--pgdata", s->pgdata, "Data directory of a node of this host")->required()->envname("PGDATA");
    backups->add_option("--state-dir", s->state_dir, "Keeper state directory (default: <pgdata>.keeper)");
    backups->add_flag("--json", s->json, "JSON output");
    backups->callback([s] {
        std::string pgdata = std::filesystem::absolute(s->pgdata).lexically_normal().string();
        while (pgdata.size() > 1 && pgdata.back() == '/') pgdata.pop_back();
        keeper::KeeperConfig config;
        try {
            config = keeper::load_config(s->state_dir.empty() ? autofailover::support::default_state_dir(pgdata)
                                                               : s->state_dir);
        } catch (const std::exception& e) {
            throw CliError(ExitCode::BadArguments, e.what());
        }
        if (!config.backup.enabled())
            throw CliError(ExitCode::BadArguments, "node " + config.name + " has no backup integration (keeper.json "
                                                   "\"backup\"; docs/backups.md)");
        keeper::BackupInfo info;
        try {
            info = keeper::read_backup_info(config, std::chrono::seconds(kInfoTimeoutSeconds));
        } catch (const std::exception& e) {
            throw CliError(ExitCode::LocalPostgresError, e.what());
        }
        std::cout << (s->json ? info_to_json(info).dump(2) + "\n" : render_info(info));
    });
}

}  // namespace autoctl
