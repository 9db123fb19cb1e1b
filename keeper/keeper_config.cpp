#include "keeper/keeper_config.h"

#include "libautofailover/input_validation.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <regex>
#include <stdexcept>

namespace autofailover::keeper {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr long long kDay = 24LL * 3600 * 1000;

[[noreturn]] void bad(const std::string& key, const std::string& what) {
    throw std::runtime_error("keeper.json: \"" + key + "\" " + what);
}

// An integer in [min, max]. JSON has one number type: a float, a huge value or a
// fraction is refused here rather than cast (a double out of range is UB in C++).
long long integer(const Json& object, const char* key, long long fallback, long long min, long long max) {
    auto it = object.find(key);
    if (it == object.end()) return fallback;
    const std::string range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    long long value = 0;
    if (it->is_number_unsigned()) {
        const auto u = it->get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(max)) bad(key, range + " (got " + it->dump() + ")");
        value = static_cast<long long>(u);
    } else if (it->is_number_integer()) {
        value = it->get<std::int64_t>();
    } else {
        bad(key, range + " (got " + it->dump().substr(0, 40) + ")");
    }
    if (value < min || value > max) bad(key, range + " (got " + std::to_string(value) + ")");
    return value;
}

void read_int(const Json& object, const char* key, int& into, int min, int max) {
    into = static_cast<int>(integer(object, key, into, min, max));
}

void read_ms(const Json& object, const char* key, milliseconds& into, long long min, long long max) {
    into = milliseconds(integer(object, key, into.count(), min, max));
}

void read_bool(const Json& object, const char* key, bool& into) {
    auto it = object.find(key);
    if (it == object.end()) return;
    if (!it->is_boolean()) bad(key, "must be true or false");
    into = it->get<bool>();
}

bool has_control_character(const std::string& text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

// A string of at most max_bytes without control characters (a newline would end a
// line of postgresql.conf or pg_hba.conf, or start a second log line).
void read_text(const Json& object, const char* key, std::string& into, std::size_t max_bytes = 1024) {
    auto it = object.find(key);
    if (it == object.end()) return;
    if (!it->is_string()) bad(key, "must be a string");
    std::string value = it->get<std::string>();
    if (value.size() > max_bytes) bad(key, "is longer than " + std::to_string(max_bytes) + " bytes");
    if (has_control_character(value)) bad(key, "must not contain control characters (newline, tab, ...)");
    into = std::move(value);
}

void read_path(const Json& object, const char* key, std::string& into, bool required) {
    read_text(object, key, into);
    if (into.empty()) {
        if (required) bad(key, "is required");
        return;
    }
    if (auto reason = unsafe_path_reason(into)) bad(key, *reason);
}

std::size_t utf8_length(const std::string& text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Every value reaches pg_hba.conf: each is checked by libautofailover/input_validation.
void read_client_access(const Json& j, KeeperConfig& c) {
    if (auto it = j.find("allow_clients"); it != j.end()) {
        if (!it->is_array()) bad("allow_clients", "must be an array of addresses or networks (CIDR)");
        if (it->size() > 64) bad("allow_clients", "holds at most 64 networks");
        c.allow_clients.clear();
        for (const auto& item : *it) {
            if (!item.is_string()) bad("allow_clients", "must be an array of strings");
            const std::string network = item.get<std::string>();
            const std::string problem = autofailover::client_network_problem(network);
            if (!problem.empty()) bad("allow_clients", "\"" + network.substr(0, 64) + "\": " + problem);
            c.allow_clients.push_back(network);
        }
    }
    read_text(j, "client_database", c.client_database, 512);
    if (auto problem = autofailover::client_database_problem(c.client_database); !problem.empty())
        bad("client_database", problem);
    read_text(j, "client_role", c.client_role, 512);
    if (auto problem = autofailover::client_role_problem(c.client_role); !problem.empty()) bad("client_role", problem);
    read_bool(j, "skip_pg_hba", c.skip_pg_hba);
}

}  // namespace

std::optional<std::string> unsafe_path_reason(const std::string& path) {
    if (path.empty() || path.front() != '/') return "must be an absolute path";
    if (path.size() > 1024) return "is longer than 1024 bytes";
    if (has_control_character(path)) return "must not contain control characters (newline, tab, ...)";
    // pg_ctl runs Postgres through /bin/sh -c with the path in double quotes.
    for (char c : {'"', '`', '$', '\\'})
        if (path.find(c) != std::string::npos)
            return std::string("must not contain ") + c +
                   " (pg_ctl hands the path to /bin/sh, which would interpret it); choose a path without \", `, $ "
                   "and \\";
    return std::nullopt;
}

std::optional<std::string> invalid_hostname_reason(const std::string& host) {
    unsigned char address[sizeof(in6_addr)];
    if (::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1)
        return std::nullopt;
    if (host.empty() || host.size() > 253) return "must be a host name of 1 to 253 characters or an IP address";
    // pg_hba.conf reads these as keywords, not as a host (all: any address).
    for (const char* keyword : {"all", "samehost", "samenet"})
        if (host == keyword) return std::string("must not be the pg_hba.conf keyword ") + keyword;
    static const std::regex label(R"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)");
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = host.find('.', start);
        const std::string part = host.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!std::regex_match(part, label))
            return "must be a host name (letters, digits and '-' in dot-separated labels of 1 to 63, e.g. "
                   "db1.example.com) or an IP address";
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return std::nullopt;
}

std::optional<std::string> backup_setting_problem(const std::string& key, const std::string& value) {
    if (key == "tool") {
        if (value.empty() || value == "pgbackrest") return std::nullopt;
        return "must be \"\" (off) or pgbackrest";
    }
    if (key == "stanza") {
        static const std::regex stanza(R"([A-Za-z0-9][A-Za-z0-9_-]{0,63})");
        if (std::regex_match(value, stanza)) return std::nullopt;
        return "must be 1 to 64 letters, digits, _ or -, starting with a letter or digit";
    }
    if (key == "config" || key == "command") {
        static const std::regex path(R"(/[A-Za-z0-9_./+-]{1,1023})");
        if (std::regex_match(value, path) && value.find("/../") == std::string::npos) return std::nullopt;
        return "must be an absolute path of letters, digits and _ . / + - (it reaches archive_command, "
               "which Postgres runs through /bin/sh)";
    }
    return "is not a backup setting";
}

std::string config_to_json(const KeeperConfig& c) {
    const auto& t = c.timeouts;
    Json timeouts = {
        {"poll_period_ms", t.poll_period.count()},
        {"monitor_call_timeout_ms", t.monitor_call_timeout.count()},
        {"network_partition_timeout_ms", t.network_partition_timeout.count()},
        {"postgres_start_timeout_ms", t.postgres_start_timeout.count()},
        {"postgres_stop_timeout_ms", t.postgres_stop_timeout.count()},
        {"postgres_restart_max_retries", t.postgres_restart_max_retries},
        {"postgres_restart_failure_timeout_ms", t.postgres_restart_failure_timeout.count()},
        {"promote_timeout_ms", t.promote_timeout.count()},
        {"sync_rep_wait_timeout_ms", t.sync_rep_wait_timeout.count()},
        {"fast_forward_timeout_ms", t.fast_forward_timeout.count()},
        {"stop_replication_timeout_ms", t.stop_replication_timeout.count()},
        {"base_backup_timeout_ms", t.base_backup_timeout.count()},
        {"rewind_timeout_ms", t.rewind_timeout.count()},
        {"rejoin_stream_timeout_ms", t.rejoin_stream_timeout.count()},
        {"http_io_timeout_ms", t.http_io_timeout.count()},
        {"http_liveness_timeout_ms", t.http_liveness_timeout.count()},
        {"election_poll_period_ms", t.election_poll_period.count()},
        {"standby_stream_wait_ms", t.standby_stream_wait.count()},
        {"local_check_interval_ms", t.local_check_interval.count()},
    };
    Json j = {
        {"monitor_uri", c.monitor_uri},
        {"monitor_user", c.monitor_user},
        {"monitor_passfile", c.monitor_passfile},
        {"formation", c.formation},
        {"name", c.name},
        {"hostname", c.hostname},
        {"port", c.port},
        {"pgdata", c.pgdata},
        {"pg_bindir", c.pg_bindir},
        {"auth_method", c.auth_method},
        {"replication_passfile", c.replication_passfile},
        {"ssl_cert_file", c.ssl_cert_file},
        {"ssl_key_file", c.ssl_key_file},
        {"ssl_ca_file", c.ssl_ca_file},
        {"socket_dir", c.socket_dir},
        {"max_backup_rate", c.max_backup_rate},
        {"stop_postgres_on_exit", c.stop_postgres_on_exit},
        {"sync_new_data_directories", c.sync_new_data_directories},
        {"wal_keep_size", c.wal_keep_size},
        {"max_slot_wal_keep_size", c.max_slot_wal_keep_size},
        {"allow_clients", c.allow_clients},
        {"client_database", c.client_database},
        {"client_role", c.client_role},
        {"skip_pg_hba", c.skip_pg_hba},
        {"http_port", c.http_port},
        {"http_listen", c.http_listen},
        {"http_threads", c.http_threads},
        {"hooks", Json{{"on_start", c.hooks.on_start}, {"on_stop", c.hooks.on_stop},
                       {"on_role_change", c.hooks.on_role_change}, {"on_fence", c.hooks.on_fence},
                       {"pre_promote", c.hooks.pre_promote}, {"timeout_ms", c.hooks.timeout.count()}}},
        {"timeouts", timeouts},
    };
    if (c.backup.enabled())
        j["backup"] = Json{{"tool", c.backup.tool}, {"stanza", c.backup.stanza}, {"config", c.backup.config},
                           {"command", c.backup.command}};
    return j.dump(2) + "\n";
}

KeeperConfig config_from_json(const std::string& text) {
    Json j;
    try {
        j = Json::parse(text);
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("keeper.json is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw std::runtime_error("keeper.json: expected a JSON object");
    KeeperConfig c;
    read_text(j, "monitor_uri", c.monitor_uri, 4096);
    if (c.monitor_uri.empty()) bad("monitor_uri", "is required");
    read_text(j, "formation", c.formation, 63);
    if (!std::regex_match(c.formation, std::regex(R"([A-Za-z_][A-Za-z0-9_-]{0,62})")))
        bad("formation", "must be 1 to 63 letters, digits, _ or -, not starting with a digit or -");
    read_text(j, "name", c.name, 63 * 4);
    if (utf8_length(c.name) > 63) bad("name", "must be at most 63 characters");
    read_text(j, "hostname", c.hostname, 253);
    if (c.hostname.empty()) bad("hostname", "is required");
    if (auto reason = invalid_hostname_reason(c.hostname)) bad("hostname", *reason);
    read_int(j, "port", c.port, 1, 65535);
    read_path(j, "pgdata", c.pgdata, true);
    read_path(j, "pg_bindir", c.pg_bindir, true);
    read_text(j, "auth_method", c.auth_method, 32);
    if (c.auth_method != "scram-sha-256" && c.auth_method != "trust")
        bad("auth_method", "must be scram-sha-256 or trust");
    read_path(j, "replication_passfile", c.replication_passfile, false);
    read_text(j, "monitor_user", c.monitor_user, 63);
    if (!c.monitor_user.empty() && !std::regex_match(c.monitor_user, std::regex(R"(autofailover_keeper_[0-9]{1,19})")))
        bad("monitor_user", "must be this node's monitor role, autofailover_keeper_<node id>");
    read_path(j, "monitor_passfile", c.monitor_passfile, false);
    read_path(j, "ssl_cert_file", c.ssl_cert_file, false);
    read_path(j, "ssl_key_file", c.ssl_key_file, false);
    read_path(j, "ssl_ca_file", c.ssl_ca_file, false);
    // A Unix socket path holds at most 107 bytes, "/.s.PGSQL.<port>" included.
    read_path(j, "socket_dir", c.socket_dir, true);
    if (c.socket_dir.size() > 80) bad("socket_dir", "must be at most 80 bytes (Unix socket paths are short)");
    read_text(j, "max_backup_rate", c.max_backup_rate, 16);
    if (!c.max_backup_rate.empty() && !std::regex_match(c.max_backup_rate, std::regex(R"([1-9][0-9]{0,6}[kM]?)")))
        bad("max_backup_rate", "must be empty (unlimited) or a pg_basebackup rate such as 32M or 20000k");
    read_bool(j, "stop_postgres_on_exit", c.stop_postgres_on_exit);
    read_bool(j, "sync_new_data_directories", c.sync_new_data_directories);
    read_text(j, "wal_keep_size", c.wal_keep_size, 32);
    read_text(j, "max_slot_wal_keep_size", c.max_slot_wal_keep_size, 32);
    read_client_access(j, c);
    read_int(j, "http_port", c.http_port, 0, 65535);
    read_text(j, "http_listen", c.http_listen, 253);
    if (auto reason = invalid_hostname_reason(c.http_listen)) bad("http_listen", *reason);
    read_int(j, "http_threads", c.http_threads, 1, 64);
    if (auto it = j.find("hooks"); it != j.end()) {
        if (!it->is_object()) bad("hooks", "must be an object");
        for (auto [key, into] : {std::pair<const char*, std::string*>{"on_start", &c.hooks.on_start},
                                 {"on_stop", &c.hooks.on_stop},
                                 {"on_role_change", &c.hooks.on_role_change},
                                 {"on_fence", &c.hooks.on_fence},
                                 {"pre_promote", &c.hooks.pre_promote}})
            read_path(*it, key, *into, false);
        read_ms(*it, "timeout_ms", c.hooks.timeout, 100, 10 * 60 * 1000);
    }
    if (auto it = j.find("timeouts"); it != j.end()) {
        if (!it->is_object()) bad("timeouts", "must be an object");
        auto& t = c.timeouts;
        // Lower bounds keep the loop from spinning; upper bounds keep every sum of timeouts
        // far from overflowing a clock (a week at most).
        read_ms(*it, "poll_period_ms", t.poll_period, 10, kDay);
        read_ms(*it, "monitor_call_timeout_ms", t.monitor_call_timeout, 10, 10 * 60 * 1000);
        read_ms(*it, "network_partition_timeout_ms", t.network_partition_timeout, 100, kDay);
        read_ms(*it, "postgres_start_timeout_ms", t.postgres_start_timeout, 1000, kDay);
        read_ms(*it, "postgres_stop_timeout_ms", t.postgres_stop_timeout, 1000, kDay);
        read_int(*it, "postgres_restart_max_retries", t.postgres_restart_max_retries, 0, 1000);
        read_ms(*it, "postgres_restart_failure_timeout_ms", t.postgres_restart_failure_timeout, 0, kDay);
        read_ms(*it, "promote_timeout_ms", t.promote_timeout, 100, kDay);
        read_ms(*it, "sync_rep_wait_timeout_ms", t.sync_rep_wait_timeout, 100, kDay);
        read_ms(*it, "fast_forward_timeout_ms", t.fast_forward_timeout, 100, kDay);
        read_ms(*it, "stop_replication_timeout_ms", t.stop_replication_timeout, 100, kDay);
        read_ms(*it, "base_backup_timeout_ms", t.base_backup_timeout, 1000, 7 * kDay);
        read_ms(*it, "rewind_timeout_ms", t.rewind_timeout, 1000, 7 * kDay);
        read_ms(*it, "rejoin_stream_timeout_ms", t.rejoin_stream_timeout, 100, kDay);
        read_ms(*it, "http_io_timeout_ms", t.http_io_timeout, 100, 60 * 1000);
        read_ms(*it, "http_liveness_timeout_ms", t.http_liveness_timeout, 100, kDay);
        read_ms(*it, "election_poll_period_ms", t.election_poll_period, 10, kDay);
        read_ms(*it, "standby_stream_wait_ms", t.standby_stream_wait, 0, kDay);
        read_ms(*it, "local_check_interval_ms", t.local_check_interval, 1, 1000);
    }
    if (auto it = j.find("backup"); it != j.end()) {
        if (!it->is_object()) bad("backup", "must be an object");
        auto& b = c.backup;
        for (auto [key, into] : {std::pair<const char*, std::string*>{"tool", &b.tool},
                                 {"stanza", &b.stanza},
                                 {"config", &b.config},
                                 {"command", &b.command}}) {
            read_text(*it, key, *into);
            if (!b.tool.empty() || std::string(key) == "tool")
                if (auto problem = backup_setting_problem(key, *into)) bad(std::string("backup.") + key, *problem);
        }
    }
    if (c.auth_method != "trust" && c.replication_passfile.empty())
        throw std::runtime_error("keeper.json: \"auth_method\" " + c.auth_method +
                                 " needs \"replication_passfile\" (autoctl create postgres writes it, from the monitor "
                                 "or from --replication-password-file)");
    if (c.monitor_user.empty() != c.monitor_passfile.empty())
        throw std::runtime_error("keeper.json: \"monitor_user\" and \"monitor_passfile\" go together");
    if (c.ssl_cert_file.empty() != c.ssl_key_file.empty())
        throw std::runtime_error("keeper.json: \"ssl_cert_file\" and \"ssl_key_file\" go together");
    if (!c.ssl_ca_file.empty() && c.ssl_cert_file.empty())
        throw std::runtime_error("keeper.json: \"ssl_ca_file\" needs \"ssl_cert_file\" and \"ssl_key_file\"");
    // Written into autofailover.conf: a bad value would keep Postgres from starting.
    if (!std::regex_match(c.wal_keep_size, std::regex(R"(\d{1,12} ?(kB|MB|GB|TB)?)")))
        throw std::runtime_error("keeper.json: \"wal_keep_size\" must be a size such as 512MB or 0");
    if (!std::regex_match(c.max_slot_wal_keep_size, std::regex(R"(-1|\d{1,12} ?(kB|MB|GB|TB)?)")))
        throw std::runtime_error("keeper.json: \"max_slot_wal_keep_size\" must be a size such as 10GB, or -1");
    if (c.http_port != 0 && c.http_port == c.port)
        throw std::runtime_error("keeper.json: \"http_port\" must differ from \"port\"");
    return c;
}

}  // namespace autofailover::keeper
