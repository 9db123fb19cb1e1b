#include "keeper/postgres_files.h"

#include "keeper/atomic_file.h"
#include "keeper/conninfo.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <set>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

const char* kBlockBegin = "# BEGIN autofailover: managed by the keeper, do not edit inside this block";
const char* kBlockEnd = "# END autofailover";

std::string quote_guc(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'') out += "''";
        else out += c;
    }
    return out + "'";
}

std::vector<std::string> hba_addresses(const std::string& host) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, host.c_str(), buf) == 1) return {host + "/32"};
    if (inet_pton(AF_INET6, host.c_str(), buf) == 1) return {host + "/128"};
    if (host == "localhost") return {"127.0.0.1/32", "::1/128"};
    return {host};
}

}  // namespace

std::string autofailover_conf_text(const KeeperConfig& c) {
    return fmt::format(
        "# Written by the autofailover keeper at every start; edit keeper.json instead.\n"
        "listen_addresses = {}\n"
        "port = {}\n"
        "unix_socket_directories = {}\n"
        "wal_level = replica\n"
        "max_wal_senders = 12\n"
        "max_replication_slots = 12\n"
        "hot_standby = on\n"
        "hot_standby_feedback = on\n"
        "wal_log_hints = on\n"
        "wal_receiver_status_interval = 1s\n"
        // A standby retries a lost primary after this (default 5s): synchronous commits
        // wait for that retry after the primary restarted.
        "wal_retrieve_retry_interval = 500ms\n"
        // After a crash Postgres fsyncs the whole data directory before recovery;
        // syncfs does it in one call per file system (seconds saved on a slow disk).
        "recovery_init_sync_method = syncfs\n"
        "wal_sender_timeout = 30s\n"
        "synchronous_commit = on\n",
        quote_guc(c.hostname), c.port, quote_guc(c.socket_dir));
}

void write_autofailover_conf(const KeeperConfig& config) {
    write_file_atomically(config.pgdata + "/autofailover.conf", autofailover_conf_text(config));
    const std::string main_conf = config.pgdata + "/postgresql.conf";
    auto text = read_file_if_exists(main_conf);
    if (!text) throw std::runtime_error("no postgresql.conf in " + config.pgdata);
    const std::string include = "include 'autofailover.conf'";
    if (text->find(include) == std::string::npos) {
        if (!text->empty() && text->back() != '\n') *text += '\n';
        *text += include + "  # autofailover keeper settings\n";
        write_file_atomically(main_conf, *text);
    }
}

std::vector<std::string> hba_lines(const std::vector<std::string>& group_hosts, const std::string& monitor_host,
                                   const std::string& auth_method) {
    std::vector<std::string> lines;
    std::set<std::string> seen;
    for (const auto& host : group_hosts) {
        for (const auto& address : hba_addresses(host)) {
            if (!seen.insert(address).second) continue;
            lines.push_back(fmt::format("host replication autofailover_replicator {} {}", address, auth_method));
            // pg_rewind --source-server and the slot check use a plain connection.
            lines.push_back(fmt::format("host postgres autofailover_replicator {} {}", address, auth_method));
        }
    }
    if (!monitor_host.empty()) {
        // The probe role can do nothing but connect; the monitor has no secret for it.
        for (const auto& address : hba_addresses(monitor_host))
            lines.push_back(fmt::format("host postgres autofailover_monitor {} trust", address));
    }
    return lines;
}

std::string with_hba_block(const std::string& hba_text, const std::vector<std::string>& lines) {
    std::istringstream in(hba_text);
    std::string line;
    std::string rest;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line == kBlockBegin) {
            inside = true;
            continue;
        }
        if (inside) {
            if (line == kBlockEnd) inside = false;
            continue;
        }
        rest += line + "\n";
    }
    // First match wins in pg_hba.conf: the block goes first so its rules apply.
    std::string out = std::string(kBlockBegin) + "\n";
    for (const auto& l : lines) out += l + "\n";
    out += std::string(kBlockEnd) + "\n";
    return out + rest;
}

bool write_hba_block(const std::string& pgdata, const std::vector<std::string>& lines) {
    const std::string path = pgdata + "/pg_hba.conf";
    auto text = read_file_if_exists(path).value_or("");
    auto updated = with_hba_block(text, lines);
    if (updated == text) return false;
    write_file_atomically(path, updated);
    return true;
}

std::string with_auto_conf_settings(const std::string& text,
                                    const std::map<std::string, std::optional<std::string>>& settings) {
    std::istringstream in(text);
    std::string line;
    std::string out;
    auto key_of = [](const std::string& l) {
        auto start = l.find_first_not_of(" \t");
        if (start == std::string::npos || l[start] == '#') return std::string();
        auto end = l.find_first_of(" \t=", start);
        return l.substr(start, end == std::string::npos ? std::string::npos : end - start);
    };
    while (std::getline(in, line)) {
        if (settings.count(key_of(line))) continue;
        out += line + "\n";
    }
    if (out.empty()) out = "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n";
    for (const auto& [key, value] : settings)
        if (value) out += key + " = " + quote_guc(*value) + "\n";
    return out;
}

void edit_auto_conf(const std::string& pgdata, const std::map<std::string, std::optional<std::string>>& settings) {
    const std::string path = pgdata + "/postgresql.auto.conf";
    auto text = read_file_if_exists(path).value_or("");
    write_file_atomically(path, with_auto_conf_settings(text, settings));
}

void write_standby_signal(const std::string& pgdata) { write_file_atomically(pgdata + "/standby.signal", ""); }

void remove_standby_signal(const std::string& pgdata) { ::unlink((pgdata + "/standby.signal").c_str()); }

std::string replication_conninfo(const std::string& host, int port, const std::string& application_name) {
    return "host=" + conninfo_quote(host) + " port=" + std::to_string(port) +
           " user=autofailover_replicator application_name=" + conninfo_quote(application_name) +
           " connect_timeout=2 keepalives_idle=2 keepalives_interval=1 keepalives_count=3";
}

}  // namespace autofailover::keeper
