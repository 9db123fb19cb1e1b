// The HTTP endpoint's decisions (pure) and one real round trip on loopback.
#include "keeper/http_endpoint.h"
#include "keeper/node_observation.h"

#include <catch2/catch.hpp>

#include <httplib.h>

using namespace autofailover;
using namespace autofailover::keeper;
using std::chrono::milliseconds;

namespace {

const milliseconds kLive{5000};

NodeObservation primary(TimePoint now) {
    NodeObservation o;
    o.published = true;
    o.node = "node_1";
    o.reported = NodeState::Primary;
    o.goal = NodeState::Primary;
    o.pg_running = o.pg_accepting = true;
    o.lease_deadline = now + milliseconds(1500);
    o.observed_at = now;
    return o;
}

NodeObservation secondary(TimePoint now) {
    NodeObservation o;
    o.published = true;
    o.node = "node_2";
    o.reported = o.goal = NodeState::Secondary;
    o.pg_running = o.pg_accepting = o.in_recovery = o.wal_receiver_streaming = true;
    o.lag_bytes = 1000;
    o.observed_at = now;
    return o;
}

}  // namespace

TEST_CASE("lag bounds parse bytes and durations, reject the rest", "[http]") {
    CHECK(*parse_lag_bound("1048576")->bytes == 1048576);
    CHECK(*parse_lag_bound("16MB")->bytes == 16 * 1024 * 1024);
    CHECK(*parse_lag_bound("5s")->duration == milliseconds(5000));
    CHECK(*parse_lag_bound("500ms")->duration == milliseconds(500));
    CHECK(*parse_lag_bound("2min")->duration == milliseconds(120000));
    CHECK(*parse_lag_bound("0s")->duration == milliseconds(0));
    CHECK_FALSE(parse_lag_bound("5s")->bytes);
    CHECK_FALSE(parse_lag_bound("500ms")->bytes);
    CHECK_FALSE(parse_lag_bound("1.5s"));
    CHECK_FALSE(parse_lag_bound("5h"));
    CHECK_FALSE(parse_lag_bound("s"));
    CHECK_FALSE(parse_lag_bound("5S"));
    CHECK_FALSE(parse_lag_bound(""));
    CHECK_FALSE(parse_lag_bound("-1"));
    CHECK_FALSE(parse_lag_bound("5 parsecs"));
    CHECK_FALSE(parse_lag_bound("1;DROP"));
}

TEST_CASE("/primary is 200 only for a writable primary with a live lease", "[http]") {
    const auto now = Clock::now();
    auto o = primary(now);
    CHECK(endpoint_status("/primary", o, std::nullopt, now, kLive) == 200);
    CHECK(endpoint_status("/read-only", o, std::nullopt, now, kLive) == 200);
    CHECK(endpoint_status("/replica", o, std::nullopt, now, kLive) == 503);

    SECTION("lease expired") {
        CHECK(endpoint_status("/primary", o, std::nullopt, now + milliseconds(1500), kLive) == 503);
    }
    SECTION("no standby: no lease, never fences") {
        o.lease_deadline.reset();
        CHECK(endpoint_status("/primary", o, std::nullopt, now + milliseconds(4000), kLive) == 200);
    }
    SECTION("fenced") {
        o.fenced = true;
        CHECK(endpoint_status("/primary", o, std::nullopt, now, kLive) == 503);
    }
    SECTION("draining (goal) and demote_timeout (reported)") {
        o.goal = NodeState::Draining;
        CHECK(endpoint_status("/primary", o, std::nullopt, now, kLive) == 503);
        o.goal = NodeState::DemoteTimeout;
        o.reported = NodeState::DemoteTimeout;
        CHECK(endpoint_status("/primary", o, std::nullopt, now, kLive) == 503);
    }
    SECTION("Postgres down or in recovery") {
        o.pg_accepting = false;
        CHECK(endpoint_status("/primary", o, std::nullopt, now, kLive) == 503);
        CHECK(endpoint_status("/health", o, std::nullopt, now, kLive) == 503);
    }
    SECTION("keeper loop stuck: the last observation is too old") {
        o.lease_deadline.reset();
        CHECK(endpoint_status("/liveness", o, std::nullopt, now + milliseconds(6000), kLive) == 503);
        CHECK(endpoint_status("/primary", o, std::nullopt, now + milliseconds(6000), kLive) == 503);
    }
    SECTION("nothing published yet") {
        NodeObservation empty;
        CHECK(endpoint_status("/primary", empty, std::nullopt, now, kLive) == 503);
        CHECK(endpoint_status("/health", empty, std::nullopt, now, kLive) == 503);
        CHECK(endpoint_status("/liveness", empty, std::nullopt, now, kLive) == 503);
    }
    CHECK(endpoint_status("/nope", o, std::nullopt, now, kLive) == 404);
}

TEST_CASE("/replica is 200 for a streaming secondary within the lag bound", "[http]") {
    const auto now = Clock::now();
    auto o = secondary(now);
    CHECK(endpoint_status("/replica", o, std::nullopt, now, kLive) == 200);
    CHECK(endpoint_status("/primary", o, std::nullopt, now, kLive) == 503);
    CHECK(endpoint_status("/read-only", o, std::nullopt, now, kLive) == 200);
    CHECK(endpoint_status("/replica", o, parse_lag_bound("1000"), now, kLive) == 200);
    CHECK(endpoint_status("/replica", o, parse_lag_bound("999"), now, kLive) == 503);
    // No replay lag measured: a duration bound fails closed.
    CHECK(endpoint_status("/replica", o, parse_lag_bound("5s"), now, kLive) == 503);
    o.replay_lag = milliseconds(400);
    CHECK(endpoint_status("/replica", o, parse_lag_bound("5s"), now, kLive) == 200);
    CHECK(endpoint_status("/replica", o, parse_lag_bound("500ms"), now, kLive) == 200);
    CHECK(endpoint_status("/replica", o, parse_lag_bound("399ms"), now, kLive) == 503);
    CHECK(endpoint_status("/read-only", o, parse_lag_bound("399ms"), now, kLive) == 503);
    o.lag_bytes.reset();
    CHECK(endpoint_status("/replica", o, parse_lag_bound("1GB"), now, kLive) == 503);
    CHECK(endpoint_status("/replica", o, std::nullopt, now, kLive) == 200);
    o.wal_receiver_streaming = false;
    CHECK(endpoint_status("/replica", o, std::nullopt, now, kLive) == 503);
}

TEST_CASE("replay time lag: 0 when caught up, else the younger of last commit and last caught-up", "[http]") {
    // Idle primary: the last replayed commit is an hour old, yet nothing waits for replay.
    CHECK(replay_time_lag(true, milliseconds(3600000), milliseconds(5)) == milliseconds(0));
    // A write after that idle hour, not replayed yet: the standby was caught up 300 ms ago.
    CHECK(replay_time_lag(false, milliseconds(3600000), milliseconds(300)) == milliseconds(300));
    // Steady writes, replay always a little behind: the last replayed commit's age.
    CHECK(replay_time_lag(false, milliseconds(120), milliseconds(60000)) == milliseconds(120));
    CHECK(replay_time_lag(false, milliseconds(120), std::nullopt) == milliseconds(120));
    CHECK(replay_time_lag(false, std::nullopt, milliseconds(800)) == milliseconds(800));
    CHECK_FALSE(replay_time_lag(false, std::nullopt, std::nullopt));
}

TEST_CASE("the endpoint answers over HTTP from the published snapshot", "[http]") {
    const int port = 6690;
    HttpEndpoint http("127.0.0.1", port, 2, milliseconds(1000), kLive);
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2);
    auto r = client.Get("/primary");
    REQUIRE(r);
    CHECK(r->status == 503);  // nothing published yet
    http.publish(primary(Clock::now()));
    r = client.Get("/primary");
    REQUIRE(r);
    CHECK(r->status == 200);
    r = client.Get("/replica?lag=oops");
    REQUIRE(r);
    CHECK(r->status == 400);
    r = client.Get("/state");
    REQUIRE(r);
    CHECK(r->body.find("\"reported_state\": \"primary\"") != std::string::npos);
    r = client.Get("/metrics");
    REQUIRE(r);
    CHECK(r->body.find("autofailover_keeper_writable{node=\"node_1\"") != std::string::npos);
    r = client.Post("/primary", "x", "text/plain");
    REQUIRE(r);
    CHECK(r->status != 200);  // GET only
}
