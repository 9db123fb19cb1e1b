#include "keeper/postgres_files.h"

#include "support/atomic_file.h"
#include "keeper/backup.h"
#include "support/conninfo.h"
#include "libautofailover/input_validation.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
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

// pg_hba.conf address fields for a group host. A host the monitor should never have
// accepted (a keyword such as all or samenet, a .suffix pattern, a network) gets no
// line at all: the monitor's validation is not the only fence (security review #4).
std::vector<std::string> hba_addresses(const std::string& host) {
    if (!host_problem(host).empty()) return {};
    unsigned char buf[16];
    if (inet_pton(AF_INET, host.c_str(), buf) == 1) return {host + "/32"};
    if (inet_pton(AF_INET6, host.c_str(), buf) == 1) return {host + "/128"};
    if (host == "localhost") return {"127.0.0.1/32", "::1/128"};
    return {host};
}

std::string ssl_settings(const KeeperConfig& c) {
    if (!ssl_enabled(c)) return "";
    return fmt::format("ssl = on\nssl_cert_file = {}\nssl_key_file = {}\n", quote_guc(c.ssl_cert_file),
                       quote_guc(c.ssl_key_file));
}

// libpq options shared by every connection as the replication role.
std::string replication_credentials(const KeeperConfig& c) {
    std::string out;
    if (!c.replication_passfile.empty()) out += " passfile=" + support::conninfo_quote(c.replication_passfile);
    // With the operator's CA the peer proves it is the node the monitor named.
    if (!c.ssl_ca_file.empty()) out += " sslmode=verify-full sslrootcert=" + support::conninfo_quote(c.ssl_ca_file);
    else if (ssl_enabled(c)) out += " sslmode=require";
    return out;
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
        "synchronous_commit = on\n"
        // The write lease (docs/write-lease.md): a primary whose keeper is frozen or cut
        // off refuses writes by itself once the keeper's fencing deadline has passed.
        "shared_preload_libraries = 'autofailover_node'\n"
        "{}",
        quote_guc(c.hostname), c.port, quote_guc(c.socket_dir), ssl_settings(c)) +
           // WAL kept for a node that rejoins without a slot holding it (docs/keeper.md).
           "wal_keep_size = " + quote_guc(c.wal_keep_size) + "\n" +
           // The most WAL a slot holds for a node that is away (docs/keeper.md).
           "max_slot_wal_keep_size = " + quote_guc(c.max_slot_wal_keep_size) + "\n" +
           // pgBackRest archiving and restore_command (docs/backups.md); "" when off.
           backup_conf_text(c);
}

void write_autofailover_conf(const KeeperConfig& config) {
    support::write_file_atomically(config.pgdata + "/autofailover.conf", autofailover_conf_text(config));
    const std::string main_conf = config.pgdata + "/postgresql.conf";
    auto text = support::read_file_if_exists(main_conf);
    if (!text) throw std::runtime_error("no postgresql.conf in " + config.pgdata);
    const std::string include = "include 'autofailover.conf'";
    if (text->find(include) == std::string::npos) {
        if (!text->empty() && text->back() != '\n') *text += '\n';
        *text += include + "  # autofailover keeper settings\n";
        support::write_file_atomically(main_conf, *text);
    }
}

std::vector<std::string> hba_lines(const std::vector<std::string>& group_hosts, const std::string& monitor_host,
                                   const std::string& auth_method, bool ssl) {
    const char* type = ssl ? "hostssl" : "host";
    std::vector<std::string> lines;
    std::set<std::string> seen;
    for (const auto& host : group_hosts) {
        for (const auto& address : hba_addresses(host)) {
            if (!seen.insert(address).second) continue;
            lines.push_back(fmt::format("{} replication autofailover_replicator {} {}", type, address, auth_method));
            // pg_rewind --source-server and the slot check use a plain connection.
            lines.push_back(fmt::format("{} postgres autofailover_replicator {} {}", type, address, auth_method));
        }
    }
    // A comment names each refused host (made printable), so the block changes and the keeper
    // logs it once; a comment line cannot widen access.
    for (const auto& host : hosts_refused_by_hba(group_hosts)) lines.push_back("# refused group host: " + printable(host));
    if (!monitor_host.empty()) {
        // The probe role can do nothing but connect, and the monitor has no secret for it: with a
        // password method the server's authentication request is the probe's proof of life (a
        // client that hangs up there leaves no line in the server log, a missing pg_hba line would).
        for (const auto& address : hba_addresses(monitor_host))
            lines.push_back(fmt::format("{} postgres autofailover_monitor {} {}", type, address, auth_method));
    }
    return lines;
}

std::string printable(const std::string& text) {
    std::string out;
    for (char c : text.substr(0, 64)) out += (c > 0x20 && c < 0x7f) ? c : '?';
    return text.size() > 64 ? out + "..." : out;
}

std::vector<std::string> hosts_refused_by_hba(const std::vector<std::string>& hosts) {
    std::vector<std::string> refused;
    for (const auto& host : hosts)
        if (!host_problem(host).empty()) refused.push_back(host);
    return refused;
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

namespace {

// One source of application lines (keeper.json, or the formation's list from the monitor): its networks as
// pg_hba.conf CIDRs, or why none of its lines is written. Refused values become comment lines.
struct ClientSource {
    std::vector<std::string> cidrs;
    std::string database;
    std::string role;
};

ClientSource client_source(const std::vector<std::string>& networks, const std::string& database,
                           const std::string& role, const char* origin, std::vector<std::string>& comments) {
    ClientSource source{{}, database, role};
    for (const auto& network : networks) {
        // Checked where the value came from (keeper.json load, the monitor's SQL); this is the last fence.
        if (!client_network_problem(network).empty()) {
            comments.push_back(fmt::format("# refused {}client network: {}", origin, printable(network)));
            continue;
        }
        const std::string cidr = client_network_cidr(network);
        if (std::find(source.cidrs.begin(), source.cidrs.end(), cidr) == source.cidrs.end()) source.cidrs.push_back(cidr);
    }
    if (!source.cidrs.empty() && (!client_database_problem(database).empty() || !client_role_problem(role).empty())) {
        comments.push_back(fmt::format("# refused {}client_database or client_role: no application line", origin));
        source.cidrs.clear();
    }
    return source;
}

}  // namespace

std::vector<std::string> client_hba_lines(const KeeperConfig& c) { return client_hba_lines(c, FormationClients{}); }

std::vector<std::string> client_hba_lines(const KeeperConfig& c, const FormationClients& formation) {
    std::vector<std::string> lines;
    const ClientSource node = client_source(c.allow_clients, c.client_database, c.client_role, "", lines);
    const ClientSource wide = client_source(formation.networks, formation.client_database, formation.client_role,
                                            "formation ", lines);
    const char* type = ssl_enabled(c) ? "hostssl" : "host";
    // `host` matches TLS and plain connections alike: the keeper's roles never log in from any client network.
    std::vector<std::string> rejected;
    for (const auto* source : {&node, &wide})
        for (const auto& cidr : source->cidrs)
            if (std::find(rejected.begin(), rejected.end(), cidr) == rejected.end()) {
                rejected.push_back(cidr);
                lines.push_back(fmt::format("host all autofailover_replicator,autofailover_monitor {} reject", cidr));
            }
    // Then the node's own lines, then the formation's: pg_hba.conf takes the first line matching address,
    // database and role together, so the two lists add up (docs/clients.md, precedence).
    for (const auto* source : {&node, &wide})
        for (const auto& cidr : source->cidrs) {
            std::string line = fmt::format("{} {} {} {} {}", type, source->database, source->role, cidr, c.auth_method);
            if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(std::move(line));
        }
    return lines;
}

std::string hba_local_part(const std::string& hba_text) {
    std::istringstream in(hba_text);
    std::string line;
    std::string rest;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line == kBlockBegin) inside = true;
        else if (inside && line == kBlockEnd) inside = false;
        else if (!inside) rest += line + "\n";
    }
    return rest;
}

std::string with_hba_local_part(const std::string& current_text, const std::string& local_part) {
    std::istringstream in(current_text);
    std::string line;
    std::string block;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line == kBlockBegin) inside = true;
        if (inside) block += line + "\n";
        if (inside && line == kBlockEnd) break;
    }
    if (inside && block.find(std::string(kBlockEnd) + "\n") == std::string::npos) block.clear();  // cut block: dropped
    return block + local_part;
}

std::string saved_hba_path(const std::string& pgdata) {
    std::string p = pgdata;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p + ".pg_hba.saved";
}

void save_local_hba(const std::string& pgdata) {
    const std::string saved = saved_hba_path(pgdata);
    if (support::read_file_if_exists(saved)) return;  // from before an interrupted rewind: that one is the node's own
    auto text = support::read_file_if_exists(pgdata + "/pg_hba.conf");
    if (!text) return;
    support::write_file_atomically(saved, hba_local_part(*text));
}

bool restore_local_hba(const std::string& pgdata) {
    const std::string saved = saved_hba_path(pgdata);
    auto local = support::read_file_if_exists(saved);
    if (!local) return false;
    const std::string path = pgdata + "/pg_hba.conf";
    auto current = support::read_file_if_exists(path);
    if (!current) return false;  // no data directory (yet): keep the saved part for later
    const std::string updated = with_hba_local_part(*current, *local);
    if (updated != *current) support::write_file_atomically(path, updated);
    ::unlink(saved.c_str());
    return true;
}

bool write_hba_block(const std::string& pgdata, const std::vector<std::string>& lines) {
    const std::string path = pgdata + "/pg_hba.conf";
    auto text = support::read_file_if_exists(path).value_or("");
    auto updated = with_hba_block(text, lines);
    if (updated == text) return false;
    support::write_file_atomically(path, updated);
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
    auto text = support::read_file_if_exists(path).value_or("");
    support::write_file_atomically(path, with_auto_conf_settings(text, settings));
}

void write_standby_signal(const std::string& pgdata) { support::write_file_atomically(pgdata + "/standby.signal", ""); }

void remove_standby_signal(const std::string& pgdata) { ::unlink((pgdata + "/standby.signal").c_str()); }

std::string replication_conninfo(const std::string& host, int port, const std::string& application_name) {
    return "host=" + support::conninfo_quote(host) + " port=" + std::to_string(port) +
           " user=autofailover_replicator application_name=" + support::conninfo_quote(application_name) +
           " connect_timeout=2 keepalives_idle=2 keepalives_interval=1 keepalives_count=3";
}

std::string replication_conninfo(const KeeperConfig& config, const std::string& host, int port,
                                 const std::string& application_name) {
    return replication_conninfo(host, port, application_name) + replication_credentials(config);
}

std::string source_conninfo(const KeeperConfig& config, const std::string& host, int port) {
    return "host=" + support::conninfo_quote(host) + " port=" + std::to_string(port) +
           " user=autofailover_replicator dbname=postgres connect_timeout=2" + replication_credentials(config);
}

std::vector<std::string> replication_client_env(const KeeperConfig& config) {
    std::vector<std::string> env;
    if (!config.replication_passfile.empty()) env.push_back("PGPASSFILE=" + config.replication_passfile);
    if (!config.ssl_ca_file.empty()) {
        env.push_back("PGSSLMODE=verify-full");
        env.push_back("PGSSLROOTCERT=" + config.ssl_ca_file);
    } else if (ssl_enabled(config)) {
        env.push_back("PGSSLMODE=require");
    }
    return env;
}

}  // namespace autofailover::keeper
