#include "keeper/backup.h"

#include "support/child_process.h"
#include "support/conninfo.h"
#include "keeper/keeper.h"
#include "keeper/keeper_loop.h"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <stdexcept>

namespace autofailover::keeper {
namespace {

using Json = nlohmann::json;

std::string text_of(const Json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return "";
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

std::uint64_t unsigned_of(const Json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_number()) return 0;
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_number_integer() && it->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(it->get<std::int64_t>());
    return 0;
}

const Json& member(const Json& object, const char* key) {
    static const Json empty = Json::object();
    auto it = object.find(key);
    return it == object.end() || !it->is_object() ? empty : *it;
}

std::string common_prefix(const KeeperConfig& c) {
    return shell_word_for_archive_command(c.backup.command) + " " +
           shell_word_for_archive_command("--config=" + c.backup.config) + " " +
           shell_word_for_archive_command("--stanza=" + c.backup.stanza) + " " +
           shell_word_for_archive_command("--pg1-path=" + c.pgdata);
}

}  // namespace

std::string shell_word_for_archive_command(const std::string& text) {
    std::string out = "'";
    for (char ch : text) {
        if (ch == '\'') out += "'\\''";
        else if (ch == '%') out += "%%";
        else out += ch;
    }
    return out + "'";
}

std::string archive_command(const KeeperConfig& c) { return common_prefix(c) + " archive-push \"%p\""; }

std::string restore_command(const KeeperConfig& c) { return common_prefix(c) + " archive-get %f \"%p\""; }

std::string backup_conf_text(const KeeperConfig& c) {
    if (!c.backup.enabled()) return "";
    auto guc = [](const std::string& value) {
        std::string out = "'";
        for (char ch : value) out += ch == '\'' ? std::string("''") : std::string(1, ch);
        return out + "'";
    };
    // The same on every node (only pg1-path differs), so nothing changes at a role change:
    // Postgres archives on the primary only. Not "always": pgBackRest refuses to back up a
    // primary running with it ("archive_mode=always not supported"); what a standby
    // received but the old primary never archived is handled at promotion (docs/backups.md).
    return std::string("archive_mode = on\n") + "archive_command = " + guc(archive_command(c)) + "\n" +
           "restore_command = " + guc(restore_command(c)) + "\n";
}

std::vector<std::string> pgbackrest_argv(const KeeperConfig::Backup& b, const std::string& name,
                                         const std::vector<std::string>& options) {
    std::vector<std::string> argv = {b.command, "--config=" + b.config, "--stanza=" + b.stanza};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(name);
    return argv;
}

std::vector<std::string> pgbackrest_node_options(const KeeperConfig& node, int index) {
    const std::string pg = "--pg" + std::to_string(index) + "-";
    return {pg + "path=" + node.pgdata, pg + "port=" + std::to_string(node.port), pg + "socket-path=" + node.socket_dir};
}

int requeue_received_segments(const std::string& pgdata) {
    static const std::regex segment_done(R"([0-9A-F]{24}\.done)");
    const std::filesystem::path status = std::filesystem::path(pgdata) / "pg_wal" / "archive_status";
    int count = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(status, ec)) {
        const std::string name = entry.path().filename().string();
        if (!std::regex_match(name, segment_done)) continue;
        std::filesystem::rename(entry.path(), status / (name.substr(0, 24) + ".ready"), ec);
        if (!ec) ++count;
    }
    return count;
}

bool queue_unclosed_segment(const std::string& pgdata, std::uint64_t received_end, std::uint64_t wal_segment_size) {
    if (wal_segment_size == 0 || received_end < wal_segment_size || received_end % wal_segment_size != 0) return false;
    const std::uint64_t segno = received_end / wal_segment_size - 1;
    const std::uint64_t per_xlogid = 0x100000000ULL / wal_segment_size;
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08X%08X", static_cast<unsigned>(segno / per_xlogid),
                  static_cast<unsigned>(segno % per_xlogid));
    static const std::regex timeline(R"([0-9A-F]{8})");
    const std::filesystem::path wal = std::filesystem::path(pgdata) / "pg_wal";
    std::string newest;  // the same segment of several timelines: the one received last
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(wal, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() == 24 && name.compare(8, 16, suffix) == 0 && std::regex_match(name.substr(0, 8), timeline) &&
            entry.is_regular_file(ec) && name > newest)
            newest = name;
    }
    if (newest.empty()) return false;
    const std::filesystem::path status = wal / "archive_status";
    if (std::filesystem::exists(status / (newest + ".ready"), ec) || std::filesystem::exists(status / (newest + ".done"), ec))
        return false;
    std::ofstream(status / (newest + ".ready"));
    return std::filesystem::exists(status / (newest + ".ready"), ec);
}

BackupInfo parse_backup_info(const std::string& json_text, const std::string& stanza) {
    Json j;
    try {
        j = Json::parse(json_text);
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("pgbackrest info: not JSON: ") + e.what());
    }
    if (!j.is_array()) throw std::runtime_error("pgbackrest info: expected a JSON array of stanzas");
    BackupInfo info;
    info.stanza = stanza;
    for (const auto& s : j) {
        if (!s.is_object() || text_of(s, "name") != stanza) continue;
        const Json& status = member(s, "status");
        if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) info.status_code = it->get<int>();
        info.status_message = text_of(status, "message");
        if (auto it = s.find("db"); it != s.end() && it->is_array())
            for (const auto& db : *it)
                info.databases.emplace_back(static_cast<int>(unsigned_of(db, "id")), text_of(db, "system-id"));
        if (auto it = s.find("archive"); it != s.end() && it->is_array())
            for (const auto& a : *it)
                info.archives.push_back({static_cast<int>(unsigned_of(member(a, "database"), "id")), text_of(a, "min"),
                                         text_of(a, "max")});
        if (auto it = s.find("backup"); it != s.end() && it->is_array())
            for (const auto& b : *it) {
                BackupSet set;
                set.label = text_of(b, "label");
                set.type = text_of(b, "type");
                set.start_epoch = static_cast<std::int64_t>(unsigned_of(member(b, "timestamp"), "start"));
                set.stop_epoch = static_cast<std::int64_t>(unsigned_of(member(b, "timestamp"), "stop"));
                set.size = unsigned_of(member(b, "info"), "size");
                set.repo_size = unsigned_of(member(member(b, "info"), "repository"), "delta");
                set.wal_start = text_of(member(b, "archive"), "start");
                set.wal_stop = text_of(member(b, "archive"), "stop");
                set.lsn_start = text_of(member(b, "lsn"), "start");
                set.lsn_stop = text_of(member(b, "lsn"), "stop");
                set.db_id = static_cast<int>(unsigned_of(member(b, "database"), "id"));
                if (auto e = b.find("error"); e != b.end() && e->is_boolean()) set.error = e->get<bool>();
                info.backups.push_back(std::move(set));
            }
        return info;
    }
    throw std::runtime_error("pgbackrest info: no stanza " + stanza + " in the answer");
}

std::optional<BackupSet> latest_backup_of(const BackupInfo& info, const std::string& system_identifier) {
    for (auto it = info.backups.rbegin(); it != info.backups.rend(); ++it) {
        if (it->error) continue;
        for (const auto& [id, system] : info.databases)
            if (id == it->db_id && system == system_identifier) return *it;
    }
    return std::nullopt;
}

BackupInfo read_backup_info(const KeeperConfig& config, std::chrono::milliseconds timeout) {
    support::ChildOptions options;
    options.timeout = timeout;
    options.extra_env = {"LC_ALL=C"};
    const auto r = support::run_child(pgbackrest_argv(config.backup, "info", {"--output=json"}), options);
    if (!r.ok()) throw std::runtime_error("pgbackrest info failed: " + support::tail_of(r.output));
    // stderr is merged into the output: the JSON is the last line that starts with '['.
    const auto start = r.output.rfind("\n[");
    return parse_backup_info(start == std::string::npos ? r.output : r.output.substr(start + 1), config.backup.stanza);
}

}  // namespace autofailover::keeper

// ---- autoctl perform backup -----------------------------------------------------------

namespace autofailover::keeper {
namespace {

struct LocalNode {
    KeeperConfig config;
    bool in_recovery = false;
    bool streaming = false;
};

LocalNode inspect_local_node(const std::string& pgdata_arg) {
    std::string pgdata = std::filesystem::absolute(pgdata_arg).lexically_normal().string();
    while (pgdata.size() > 1 && pgdata.back() == '/') pgdata.pop_back();
    LocalNode node;
    try {
        node.config = load_config(support::default_state_dir(pgdata));
    } catch (const std::exception& e) {
        throw KeeperError(KeeperError::Kind::BadArguments, "--pgdata " + pgdata + ": " + e.what());
    }
    if (!node.config.backup.enabled())
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "node " + node.config.name + " has no backup integration (keeper.json \"backup\"; "
                          "autoctl create postgres --backup pgbackrest ...)");
    try {
        pqxx::connection conn("host=" + support::conninfo_quote(node.config.socket_dir) + " port=" +
                              std::to_string(node.config.port) + " dbname=postgres connect_timeout=5");
        pqxx::nontransaction tx(conn);
        auto r = tx.exec("SELECT pg_is_in_recovery(), "
                         "coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false)");
        node.in_recovery = r[0][0].as<bool>();
        node.streaming = r[0][1].as<bool>();
    } catch (const std::exception& e) {
        throw KeeperError(KeeperError::Kind::LocalPostgres, "node " + node.config.name + ": Postgres not reachable: " + e.what());
    }
    return node;
}

support::ChildResult run_pgbackrest(const KeeperConfig& c, const std::string& name, const std::vector<std::string>& options,
                           std::chrono::milliseconds timeout) {
    support::ChildOptions child;
    child.timeout = timeout;
    child.extra_env = {"LC_ALL=C"};
    return support::run_child(pgbackrest_argv(c.backup, name, options), child);
}

}  // namespace

BackupOutcome perform_backup(const BackupRequest& request) {
    if (request.from != "standby" && request.from != "primary")
        throw KeeperError(KeeperError::Kind::BadArguments, "--from must be standby or primary");
    if (request.type != "full" && request.type != "diff" && request.type != "incr")
        throw KeeperError(KeeperError::Kind::BadArguments, "--type must be full, diff or incr");
    if (request.pgdatas.empty()) throw KeeperError(KeeperError::Kind::BadArguments, "--pgdata is required");
    std::vector<LocalNode> nodes;
    for (const auto& p : request.pgdatas) nodes.push_back(inspect_local_node(p));
    const LocalNode* primary = nullptr;
    const LocalNode* standby = nullptr;
    for (const auto& n : nodes) {
        if (n.config.backup.stanza != nodes.front().config.backup.stanza ||
            n.config.backup.config != nodes.front().config.backup.config)
            throw KeeperError(KeeperError::Kind::BadArguments, "nodes " + nodes.front().config.name + " and " +
                                                                   n.config.name + " use different stanzas or config files");
        if (!n.in_recovery && !primary) primary = &n;
        if (n.in_recovery && n.streaming && !standby) standby = &n;
    }
    if (!primary)
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "none of these nodes is the primary; pgBackRest starts and stops every backup on the "
                          "primary: add the primary's --pgdata (it must be on this host)");
    BackupOutcome out;
    out.primary = primary->config.name;
    const auto& c = primary->config;
    // Idempotent: creates the stanza on first use, checks it matches this system afterwards.
    auto created = run_pgbackrest(c, "stanza-create", pgbackrest_node_options(c, 1), request.timeout);
    if (!created.ok())
        throw KeeperError(KeeperError::Kind::LocalPostgres, "pgbackrest stanza-create failed: " + support::tail_of(created.output));
    std::vector<std::string> options = pgbackrest_node_options(c, 1);
    options.push_back("--type=" + request.type);
    options.push_back("--start-fast");  // an on-demand backup starts now, not at the next checkpoint
    out.copied_from = primary->config.name;
    if (request.from == "standby") {
        if (standby) {
            for (auto& o : pgbackrest_node_options(standby->config, 2)) options.push_back(o);
            options.push_back("--backup-standby");
            out.copied_from = standby->config.name;
        } else {
            out.note = "no streaming standby among the given nodes: copied from the primary";
        }
    }
    const auto started = std::chrono::steady_clock::now();
    auto r = run_pgbackrest(c, "backup", options, request.timeout);
    if (!r.ok()) throw KeeperError(KeeperError::Kind::LocalPostgres, "pgbackrest backup failed: " + support::tail_of(r.output));
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    try {
        const BackupInfo info = read_backup_info(c, request.timeout);
        if (!info.backups.empty()) out.label = info.backups.back().label;
    } catch (const std::exception& e) {
        out.note += (out.note.empty() ? "" : "; ") + std::string("backup done, but ") + e.what();
    }
    return out;
}

}  // namespace autofailover::keeper
