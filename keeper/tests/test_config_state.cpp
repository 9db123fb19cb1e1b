// keeper.json and state.json: round trips, defaults, and refusals that name the key.
#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"

#include <catch2/catch.hpp>

using namespace autofailover;
using namespace autofailover::keeper;
using std::chrono::milliseconds;

TEST_CASE("config survives a round trip with every timeout changed", "[config]") {
    KeeperConfig c;
    c.monitor_uri = "postgres://autofailover_keeper@127.0.0.1:6000/autofailover";
    c.monitor_user = "autofailover_keeper_7";
    c.monitor_passfile = "/tmp/x/node7.keeper/monitor.pgpass";
    c.name = "node_7";
    c.hostname = "127.0.0.1";
    c.port = 6010;
    c.pgdata = "/tmp/x/node7";
    c.replication_passfile = "/tmp/x/node7.keeper/replication.pgpass";
    c.monitor_passfile = "/tmp/x/node7.keeper/monitor.pgpass";
    c.stop_postgres_on_exit = false;
    c.sync_new_data_directories = false;
    c.timeouts.poll_period = milliseconds(250);
    c.timeouts.monitor_call_timeout = milliseconds(400);
    c.timeouts.postgres_restart_max_retries = 7;
    c.timeouts.rewind_timeout = milliseconds(1234);
    KeeperConfig back = config_from_json(config_to_json(c));
    CHECK(back.monitor_uri == c.monitor_uri);
    CHECK(back.monitor_user == "autofailover_keeper_7");
    CHECK(back.monitor_passfile == c.monitor_passfile);
    CHECK(back.name == "node_7");
    CHECK(back.monitor_passfile == c.monitor_passfile);
    CHECK(back.port == 6010);
    CHECK(back.stop_postgres_on_exit == false);
    CHECK(back.sync_new_data_directories == false);
    CHECK(back.timeouts.poll_period == milliseconds(250));
    CHECK(back.timeouts.monitor_call_timeout == milliseconds(400));
    CHECK(back.timeouts.postgres_restart_max_retries == 7);
    CHECK(back.timeouts.rewind_timeout == milliseconds(1234));
    CHECK(config_to_json(back) == config_to_json(c));
}

TEST_CASE("config keeps documented defaults for absent keys", "[config]") {
    auto c = config_from_json(R"({"monitor_uri":"postgres://m/autofailover","pgdata":"/d","hostname":"h",
                                  "replication_passfile":"/d.keeper/replication.pgpass",
                                  "timeouts":{"poll_period_ms":200}})");
    CHECK(c.auth_method == "scram-sha-256");
    CHECK(c.port == 5432);
    CHECK(c.sync_new_data_directories == true);
    CHECK(c.stop_postgres_on_exit == true);
    CHECK(c.formation == "default");
    CHECK(c.pg_bindir == "/usr/lib/postgresql/15/bin");
    CHECK(c.timeouts.poll_period == milliseconds(200));
    CHECK(c.timeouts.monitor_call_timeout == milliseconds(1000));
    CHECK(c.timeouts.postgres_restart_max_retries == 3);
    CHECK(c.timeouts.network_partition_timeout == milliseconds(1500));
}

TEST_CASE("config refusals name the offending key", "[config]") {
    auto message_of = [](const std::string& text) {
        try {
            config_from_json(text);
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK_THAT(message_of("{"), Catch::Contains("not valid JSON"));
    CHECK_THAT(message_of(R"({"pgdata":"/d","hostname":"h"})"), Catch::Contains("monitor_uri"));
    CHECK_THAT(message_of(R"({"monitor_uri":"m","pgdata":"/d","hostname":"h","port":"x"})"), Catch::Contains("port"));
    CHECK_THAT(message_of(R"({"monitor_uri":"m","pgdata":"/d","hostname":"h","port":70000})"), Catch::Contains("port"));
    CHECK_THAT(message_of(R"({"monitor_uri":"m","pgdata":"/d","hostname":"h","timeouts":{"poll_period_ms":-5}})"),
               Catch::Contains("poll_period_ms"));
    CHECK_THAT(message_of(R"({"monitor_uri":"m","pgdata":"/d","hostname":"h","timeouts":{"poll_period_ms":0}})"),
               Catch::Contains("poll_period_ms"));
    CHECK_THAT(message_of(R"({"monitor_uri":"m","pgdata":"/d","hostname":"h","auth_method":"trust","monitor_user":"autofailover_keeper_3"})"),
               Catch::Contains("monitor_passfile"));
}

TEST_CASE("state survives a round trip, times at millisecond precision", "[state]") {
    KeeperState s;
    s.node_id = 42;
    s.group_id = 3;
    s.current_state = NodeState::Secondary;
    s.goal_state = NodeState::PreparePromotion;
    s.last_monitor_contact = TimePoint(std::chrono::milliseconds(1700000000123));
    s.network_partition_timeout = milliseconds(2500);
    s.fenced_at = TimePoint(std::chrono::milliseconds(1700000000999));
    KeeperState back = state_from_json(state_to_json(s));
    CHECK(back.node_id == 42);
    CHECK(back.group_id == 3);
    CHECK(back.current_state == NodeState::Secondary);
    CHECK(back.goal_state == NodeState::PreparePromotion);
    REQUIRE(back.last_monitor_contact);
    CHECK(*back.last_monitor_contact == *s.last_monitor_contact);
    CHECK_FALSE(back.last_standby_contact);
    CHECK(back.network_partition_timeout == milliseconds(2500));
    REQUIRE(back.fenced_at);
    CHECK(*back.fenced_at == *s.fenced_at);
    CHECK_FALSE(back.dropped);
}

TEST_CASE("state writes every state name the SQL enum knows and reads it back", "[state]") {
    for (NodeState st : all_node_states()) {
        KeeperState s;
        s.current_state = st;
        s.goal_state = st;
        CHECK(state_from_json(state_to_json(s)).current_state == st);
    }
}

TEST_CASE("state refuses unknown state names instead of guessing", "[state]") {
    CHECK_THROWS_WITH(state_from_json(R"({"node_id":1,"current_state":"promoted"})"), Catch::Contains("promoted"));
    CHECK_THROWS_WITH(state_from_json("[1,2"), Catch::Contains("malformed"));
}

namespace {

// keeper.json of a registered node (what create postgres writes), with `changes` merged in.
std::string config_with(const std::string& changes) {
    std::string base = R"({"monitor_uri":"postgres://autofailover_keeper@127.0.0.1:6000/autofailover?sslmode=require",
        "name":"node1","hostname":"127.0.0.1","port":6001,"pgdata":"/srv/af/node1","auth_method":"scram-sha-256",
        "replication_passfile":"/srv/af/node1.keeper/replication.pgpass")";
    return base + (changes.empty() ? "" : "," + changes) + "}";
}

std::string refusal(const std::string& keeper_json) {
    try {
        config_from_json(keeper_json);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "accepted";
}

std::string state_refusal(const std::string& state_json) {
    try {
        state_from_json(state_json);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "accepted";
}

}  // namespace

TEST_CASE("keeper.json: a registered node's file is accepted as is", "[config][ranges]") {
    CHECK(refusal(config_with("")) == "accepted");
    CHECK(refusal(config_with(R"("hostname":"db-1.example.com")")) == "accepted");
    CHECK(refusal(config_with(R"("hostname":"::1")")) == "accepted");
    CHECK(refusal(config_with(R"("hostname":"fd00::12")")) == "accepted");
    CHECK(refusal(config_with(R"("name":"ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé")")) == "accepted");
    CHECK(refusal(config_with(R"("pgdata":"/srv/af/e sp'ace")")) == "accepted");
}

TEST_CASE("keeper.json: integers are range-checked, never wrapped or cast from huge doubles", "[config][ranges]") {
    // The review's corrupt.py cases, each refused with the key named.
    CHECK_THAT(refusal(config_with(R"("port":4294967297)")), Catch::Contains("\"port\" must be an integer from 1 to 65535"));
    CHECK_THAT(refusal(config_with(R"("port":-1)")), Catch::Contains("\"port\""));
    CHECK_THAT(refusal(config_with(R"("port":0)")), Catch::Contains("\"port\""));
    CHECK_THAT(refusal(config_with(R"("port":65536)")), Catch::Contains("\"port\""));
    CHECK_THAT(refusal(config_with(R"("port":6001.5)")), Catch::Contains("\"port\""));
    CHECK_THAT(refusal(config_with(R"("port":"6001")")), Catch::Contains("\"port\""));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"poll_period_ms":1e30})")),
               Catch::Contains("\"poll_period_ms\" must be an integer"));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"poll_period_ms":1e300})")), Catch::Contains("poll_period_ms"));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"poll_period_ms":18446744073709551615})")),
               Catch::Contains("poll_period_ms"));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"poll_period_ms":0})")), Catch::Contains("poll_period_ms"));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"postgres_restart_max_retries":-5})")),
               Catch::Contains("\"postgres_restart_max_retries\" must be an integer from 0 to 1000"));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"monitor_call_timeout_ms":-1})")),
               Catch::Contains("monitor_call_timeout_ms"));
    CHECK_THAT(refusal(config_with(R"("timeouts":{"base_backup_timeout_ms":999999999999})")),
               Catch::Contains("base_backup_timeout_ms"));
    CHECK_THAT(refusal(config_with(R"("timeouts":[])")), Catch::Contains("\"timeouts\" must be an object"));
    CHECK(refusal(config_with(R"("timeouts":{"postgres_restart_max_retries":0,"poll_period_ms":10})")) == "accepted");
    CHECK_THAT(refusal(config_with(R"("stop_postgres_on_exit":"no")")), Catch::Contains("stop_postgres_on_exit"));
}

TEST_CASE("keeper.json: names, host names and paths are checked before use", "[config][ranges]") {
    CHECK_THAT(refusal(config_with("\"name\":\"" + std::string(10'000'000, 'x') + "\"")),
               Catch::Contains("\"name\" is longer than"));
    CHECK_THAT(refusal(config_with("\"name\":\"" + std::string(64, 'x') + "\"")),
               Catch::Contains("\"name\" must be at most 63 characters"));
    CHECK_THAT(refusal(config_with(R"("name":"a\nb")")), Catch::Contains("\"name\" must not contain control"));
    // hostname goes into listen_addresses and pg_hba.conf.
    CHECK_THAT(refusal(config_with(R"("hostname":"127.0.0.1'\narchive_command='id>/tmp/x")")),
               Catch::Contains("\"hostname\""));
    for (const char* host : {"all", "samenet", "samehost", ".com", "a b", "h'ost", "host=evil", "-oProxy", "a..b",
                             "exa_mple.com", "ab-", ""})
        CHECK_THAT(refusal(config_with(std::string(R"("hostname":")") + host + "\"")), Catch::Contains("\"hostname\""));
    CHECK_THAT(refusal(config_with(R"("pgdata":"/srv/af/d q\"x")")), Catch::Contains("\"pgdata\" must not contain \""));
    CHECK_THAT(refusal(config_with(R"("pgdata":"srv/af/node1")")), Catch::Contains("\"pgdata\" must be an absolute path"));
    CHECK_THAT(refusal(config_with(R"("ssl_key_file":"/k/server.key\n")")), Catch::Contains("ssl_key_file"));
    CHECK_THAT(refusal(config_with(R"("socket_dir":"/)" + std::string(100, 's') + "\"")),
               Catch::Contains("\"socket_dir\" must be at most 80 bytes"));
    CHECK_THAT(refusal(config_with(R"("auth_method":"md5")")), Catch::Contains("\"auth_method\" must be"));
    CHECK_THAT(refusal(config_with(R"("formation":"1abc")")), Catch::Contains("\"formation\""));
    CHECK_THAT(refusal(config_with(R"("max_backup_rate":"10M; rm")")), Catch::Contains("max_backup_rate"));
    CHECK_THAT(refusal(config_with(R"("wal_keep_size":"1GB'\nshared_preload_libraries='x")")),
               Catch::Contains("wal_keep_size"));
}

TEST_CASE("data directory paths that pg_ctl's shell would interpret are refused", "[config][paths]") {
    CHECK_FALSE(unsafe_path_reason("/srv/af/node1"));
    CHECK_FALSE(unsafe_path_reason("/srv/af/e sp'ace"));
    for (const char* path : {"/srv/d q\"x", "/srv/`id`", "/srv/$HOME", "/srv/a\\b", "/srv/a\nb", "relative/path", ""})
        CHECK(unsafe_path_reason(path));
    CHECK_THAT(*unsafe_path_reason("/srv/$HOME"), Catch::Contains("/bin/sh"));
    CHECK_FALSE(invalid_hostname_reason("127.0.0.1"));
    CHECK_FALSE(invalid_hostname_reason("localhost"));
    CHECK_THAT(*invalid_hostname_reason("samenet"), Catch::Contains("pg_hba.conf keyword"));
}

TEST_CASE("state.json: integers and times are range-checked", "[state][ranges]") {
    const std::string ok = R"({"node_id":3,"group_id":0,"current_state":"secondary","goal_state":"secondary")";
    CHECK(state_refusal(ok + "}") == "accepted");
    CHECK_THAT(state_refusal(ok + R"(,"network_partition_timeout_ms":1e300})"),
               Catch::Contains("\"network_partition_timeout_ms\" must be an integer"));
    CHECK_THAT(state_refusal(ok + R"(,"network_partition_timeout_ms":-100000})"),
               Catch::Contains("network_partition_timeout_ms"));
    CHECK_THAT(state_refusal(ok + R"(,"network_partition_timeout_ms":0})"), Catch::Contains("network_partition_timeout_ms"));
    CHECK_THAT(state_refusal(ok + R"(,"last_monitor_contact_ms":9000000000000000000})"),
               Catch::Contains("last_monitor_contact_ms"));
    CHECK_THAT(state_refusal(ok + R"(,"fenced_at_ms":-1})"), Catch::Contains("fenced_at_ms"));
    CHECK_THAT(state_refusal(R"({"node_id":"abc"})"), Catch::Contains("\"node_id\""));
    CHECK_THAT(state_refusal(R"({"node_id":-2})"), Catch::Contains("\"node_id\""));
    CHECK_THAT(state_refusal(R"({"node_id":1,"group_id":4294967296})"), Catch::Contains("\"group_id\""));
    CHECK_THAT(state_refusal(R"({"node_id":1,"dropped":"yes"})"), Catch::Contains("\"dropped\""));
    CHECK_THAT(state_refusal(R"({"node_id":1,"current_state":7})"), Catch::Contains("current_state"));
    CHECK_THAT(state_refusal(""), Catch::Contains("malformed"));
    auto s = state_from_json(ok + R"(,"last_monitor_contact_ms":1700000000123,"network_partition_timeout_ms":2147483647})");
    CHECK(s.network_partition_timeout == milliseconds(2147483647));
}

TEST_CASE("keeper.json: client access keys are checked like the others", "[config][clients]") {
    CHECK(refusal(config_with(R"("allow_clients":["10.0.0.0/24","fd00::5"])")) == "accepted");
    CHECK(refusal(config_with(R"("allow_clients":[],"client_database":"app,reports","client_role":"+app")")) ==
          "accepted");
    CHECK_THAT(refusal(config_with(R"("allow_clients":"10.0.0.0/24")")), Catch::Contains("\"allow_clients\" must be an array"));
    CHECK_THAT(refusal(config_with(R"("allow_clients":[5])")), Catch::Contains("\"allow_clients\" must be an array of strings"));
    CHECK_THAT(refusal(config_with(R"("allow_clients":["all"])")), Catch::Contains("\"allow_clients\""));
    CHECK_THAT(refusal(config_with(R"("allow_clients":["samenet"])")), Catch::Contains("\"allow_clients\""));
    CHECK_THAT(refusal(config_with(R"("allow_clients":["10.0.0.0/24 trust"])")), Catch::Contains("\"allow_clients\""));
    CHECK_THAT(refusal(config_with(R"("allow_clients":["10.0.0.0/24\nhost all all 0.0.0.0/0 trust"])")),
               Catch::Contains("\"allow_clients\""));
    CHECK_THAT(refusal(config_with(R"("client_database":"replication")")), Catch::Contains("\"client_database\""));
    CHECK_THAT(refusal(config_with(R"("client_role":"autofailover_replicator")")), Catch::Contains("\"client_role\""));
    CHECK_THAT(refusal(config_with(R"("client_role":"a b")")), Catch::Contains("\"client_role\""));
    CHECK_THAT(refusal(config_with(R"("skip_pg_hba":"yes")")), Catch::Contains("\"skip_pg_hba\" must be true or false"));
    KeeperConfig c = config_from_json(config_with(R"("allow_clients":["10.1.0.0/16"],"client_role":"app","skip_pg_hba":true)"));
    KeeperConfig back = config_from_json(config_to_json(c));
    CHECK(back.allow_clients == std::vector<std::string>{"10.1.0.0/16"});
    CHECK(back.client_role == "app");
    CHECK(back.client_database == "all");
    CHECK(back.skip_pg_hba);
}

TEST_CASE("keeper.json: the HTTP endpoint is off and on loopback by default, its values are checked",
          "[config][http]") {
    const std::string base = R"({"monitor_uri":"postgres://m/autofailover","pgdata":"/d","hostname":"h","port":5432,
                                 "replication_passfile":"/d.keeper/replication.pgpass")";
    auto c = config_from_json(base + "}");
    CHECK(c.http_port == 0);
    CHECK(c.http_listen == "127.0.0.1");
    CHECK(c.http_threads == 4);
    c = config_from_json(base + R"(,"http_port":8008,"http_listen":"0.0.0.0","http_threads":2})");
    CHECK(c.http_port == 8008);
    CHECK(c.http_listen == "0.0.0.0");
    CHECK(config_from_json(config_to_json(c)).http_listen == "0.0.0.0");
    CHECK_THROWS_WITH(config_from_json(base + R"(,"http_port":5432})"), Catch::Contains("http_port"));
    CHECK_THROWS_WITH(config_from_json(base + R"(,"http_port":70000})"), Catch::Contains("http_port"));
    CHECK_THROWS_WITH(config_from_json(base + R"(,"http_listen":"a b"})"), Catch::Contains("http_listen"));
    CHECK_THROWS_WITH(config_from_json(base + R"(,"http_threads":0})"), Catch::Contains("http_threads"));
    CHECK_THROWS_WITH(config_from_json(base + R"(,"timeouts":{"http_io_timeout_ms":5}})"),
                      Catch::Contains("http_io_timeout_ms"));
}

TEST_CASE("state.json keeps the formation's client access across restarts", "[state][clients]") {
    KeeperState s;
    s.node_id = 4;
    s.formation_clients.version = 7;
    s.formation_clients.networks = {"10.0.0.0/24", "fd00::/8"};
    s.formation_clients.client_role = "+apps";
    const KeeperState back = state_from_json(state_to_json(s));
    CHECK(back.formation_clients.version == 7);
    CHECK(back.formation_clients.networks == s.formation_clients.networks);
    CHECK(back.formation_clients.client_role == "+apps");
    CHECK(back.formation_clients.client_database == "all");
    // An older state.json without the key: nothing set, version 0 (the monitor's "never set").
    const std::string ok = R"({"node_id":3,"current_state":"secondary","goal_state":"secondary")";
    CHECK(state_from_json(ok + "}").formation_clients.version == 0);
    CHECK(state_from_json(ok + "}").formation_clients.networks.empty());
    CHECK_THAT(state_refusal(ok + R"(,"formation_clients":[]})"), Catch::Contains("formation_clients"));
    CHECK_THAT(state_refusal(ok + R"(,"formation_clients":{"networks":"10.0.0.0/8"}})"), Catch::Contains("formation_clients"));
    CHECK_THAT(state_refusal(ok + R"(,"formation_clients":{"networks":[5]}})"), Catch::Contains("formation_clients"));
    CHECK_THAT(state_refusal(ok + R"(,"formation_clients":{"version":-1}})"), Catch::Contains("version"));
    CHECK_THAT(state_refusal(ok + R"(,"formation_clients":{"client_role":1}})"), Catch::Contains("client_role"));
}
