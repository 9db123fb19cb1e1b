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
                                  "timeouts":{"poll_period_ms":200}})");
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
    CHECK_THAT(message_of(R"({"monitor_uri":"m","pgdata":"/d","hostname":"h","monitor_user":"autofailover_keeper_3"})"),
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
