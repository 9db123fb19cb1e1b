#include "keeper/keeper_config.h"

#include <nlohmann/json.hpp>

#include <regex>
#include <stdexcept>

namespace autofailover::keeper {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

template <typename T>
void read(const Json& object, const char* key, T& into) {
    auto it = object.find(key);
    if (it == object.end()) return;  // absent keys keep their default
    try {
        into = it->get<T>();
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("keeper.json: bad value for \"") + key + "\": " + e.what());
    }
}

void read_ms(const Json& object, const char* key, milliseconds& into) {
    long long value = into.count();
    read(object, key, value);
    if (value < 0) throw std::runtime_error(std::string("keeper.json: \"") + key + "\" must be >= 0");
    into = milliseconds(value);
}

}  // namespace

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
    };
    Json j = {
        {"monitor_uri", c.monitor_uri},
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
        {"socket_dir", c.socket_dir},
        {"max_backup_rate", c.max_backup_rate},
        {"stop_postgres_on_exit", c.stop_postgres_on_exit},
        {"sync_new_data_directories", c.sync_new_data_directories},
        {"wal_keep_size", c.wal_keep_size},
        {"max_slot_wal_keep_size", c.max_slot_wal_keep_size},
        {"http_port", c.http_port},
        {"http_listen", c.http_listen},
        {"http_threads", c.http_threads},
        {"timeouts", timeouts},
    };
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
    read(j, "monitor_uri", c.monitor_uri);
    read(j, "formation", c.formation);
    read(j, "name", c.name);
    read(j, "hostname", c.hostname);
    read(j, "port", c.port);
    read(j, "pgdata", c.pgdata);
    read(j, "pg_bindir", c.pg_bindir);
    read(j, "auth_method", c.auth_method);
    read(j, "replication_passfile", c.replication_passfile);
    read(j, "ssl_cert_file", c.ssl_cert_file);
    read(j, "ssl_key_file", c.ssl_key_file);
    read(j, "socket_dir", c.socket_dir);
    read(j, "max_backup_rate", c.max_backup_rate);
    read(j, "stop_postgres_on_exit", c.stop_postgres_on_exit);
    read(j, "sync_new_data_directories", c.sync_new_data_directories);
    read(j, "wal_keep_size", c.wal_keep_size);
    read(j, "max_slot_wal_keep_size", c.max_slot_wal_keep_size);
    read(j, "http_port", c.http_port);
    read(j, "http_listen", c.http_listen);
    read(j, "http_threads", c.http_threads);
    if (auto it = j.find("timeouts"); it != j.end()) {
        if (!it->is_object()) throw std::runtime_error("keeper.json: \"timeouts\" must be an object");
        auto& t = c.timeouts;
        read_ms(*it, "poll_period_ms", t.poll_period);
        read_ms(*it, "monitor_call_timeout_ms", t.monitor_call_timeout);
        read_ms(*it, "network_partition_timeout_ms", t.network_partition_timeout);
        read_ms(*it, "postgres_start_timeout_ms", t.postgres_start_timeout);
        read_ms(*it, "postgres_stop_timeout_ms", t.postgres_stop_timeout);
        read(*it, "postgres_restart_max_retries", t.postgres_restart_max_retries);
        read_ms(*it, "postgres_restart_failure_timeout_ms", t.postgres_restart_failure_timeout);
        read_ms(*it, "promote_timeout_ms", t.promote_timeout);
        read_ms(*it, "sync_rep_wait_timeout_ms", t.sync_rep_wait_timeout);
        read_ms(*it, "fast_forward_timeout_ms", t.fast_forward_timeout);
        read_ms(*it, "stop_replication_timeout_ms", t.stop_replication_timeout);
        read_ms(*it, "base_backup_timeout_ms", t.base_backup_timeout);
        read_ms(*it, "rewind_timeout_ms", t.rewind_timeout);
        read_ms(*it, "rejoin_stream_timeout_ms", t.rejoin_stream_timeout);
        read_ms(*it, "http_io_timeout_ms", t.http_io_timeout);
        read_ms(*it, "http_liveness_timeout_ms", t.http_liveness_timeout);
    }
    if (c.monitor_uri.empty()) throw std::runtime_error("keeper.json: \"monitor_uri\" is required");
    if (c.pgdata.empty()) throw std::runtime_error("keeper.json: \"pgdata\" is required");
    if (c.hostname.empty()) throw std::runtime_error("keeper.json: \"hostname\" is required");
    if (c.port <= 0 || c.port > 65535) throw std::runtime_error("keeper.json: \"port\" must be 1..65535");
    if (c.auth_method != "trust" && c.replication_passfile.empty())
        throw std::runtime_error("keeper.json: \"auth_method\" " + c.auth_method +
                                 " needs \"replication_passfile\" (autoctl create postgres "
                                 "--replication-password-file writes it)");
    if (c.ssl_cert_file.empty() != c.ssl_key_file.empty())
        throw std::runtime_error("keeper.json: \"ssl_cert_file\" and \"ssl_key_file\" go together");
    // Written into autofailover.conf: a bad value would keep Postgres from starting.
    if (!std::regex_match(c.wal_keep_size, std::regex(R"(\d+ ?(kB|MB|GB|TB)?)")))
        throw std::runtime_error("keeper.json: \"wal_keep_size\" must be a size such as 512MB or 0");
    if (!std::regex_match(c.max_slot_wal_keep_size, std::regex(R"(-1|\d+ ?(kB|MB|GB|TB)?)")))
        throw std::runtime_error("keeper.json: \"max_slot_wal_keep_size\" must be a size such as 10GB, or -1");
    if (c.http_port < 0 || c.http_port > 65535) throw std::runtime_error("keeper.json: \"http_port\" must be 0 (off) or 1..65535");
    if (c.http_port != 0 && c.http_port == c.port)
        throw std::runtime_error("keeper.json: \"http_port\" must differ from \"port\"");
    if (c.http_threads < 1 || c.http_threads > 64) throw std::runtime_error("keeper.json: \"http_threads\" must be 1..64");
    if (c.timeouts.http_io_timeout.count() < 100)
        throw std::runtime_error("keeper.json: \"http_io_timeout_ms\" must be >= 100");
    if (c.timeouts.poll_period.count() == 0) throw std::runtime_error("keeper.json: \"poll_period_ms\" must be > 0");
    return c;
}

}  // namespace autofailover::keeper
