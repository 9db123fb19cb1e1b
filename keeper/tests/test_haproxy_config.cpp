// autoctl show haproxy's renderer (compiled in here: it is pure).
#include "autoctl/haproxy_config.h"

#include <catch2/catch.hpp>

#include <stdexcept>

using autoctl::HaproxyNode;
using autoctl::HaproxyOptions;
using autoctl::render_haproxy_config;

TEST_CASE("haproxy.cfg checks /primary and /replica on every node's HTTP port", "[haproxy]") {
    std::vector<HaproxyNode> nodes{{"node_1", "127.0.0.1", 6601}, {"node_2", "127.0.0.1", 6602}};
    HaproxyOptions o;
    o.http_port_offset = 50;
    const auto cfg = render_haproxy_config(nodes, o);
    CHECK(cfg.find("option httpchk GET /primary") != std::string::npos);
    CHECK(cfg.find("option httpchk GET /replica") != std::string::npos);
    CHECK(cfg.find("http-check expect status 200") != std::string::npos);
    CHECK(cfg.find("inter 500ms downinter 100ms fall 1 rise 1 on-marked-down shutdown-sessions") != std::string::npos);
    CHECK(cfg.find("server node_1 127.0.0.1:6601 check port 6651") != std::string::npos);
    // No connect retries: each waits 1 s on a stopped old primary (measured in docs/operations.md).
    CHECK(cfg.find("\n    retries 0\n") != std::string::npos);
    CHECK(cfg.find("server node_2 127.0.0.1:6602 check port 6652") != std::string::npos);
    o.http_port_offset.reset();
    o.http_port = 8008;
    CHECK(render_haproxy_config(nodes, o).find("server node_2 127.0.0.1:6602 check port 8008") != std::string::npos);
}

TEST_CASE("haproxy.cfg refuses what it cannot write safely", "[haproxy]") {
    HaproxyOptions o;
    CHECK_THROWS_AS(render_haproxy_config({{"n", "h", 5432}}, o), std::invalid_argument);  // no HTTP port rule
    o.http_port = 8008;
    CHECK_THROWS_AS(render_haproxy_config({{"n\n    server evil", "h", 5432}}, o), std::invalid_argument);
    CHECK_THROWS_AS(render_haproxy_config({{"n", "h x", 5432}}, o), std::invalid_argument);
    o.http_port.reset();
    o.http_port_offset = 70000;
    CHECK_THROWS_AS(render_haproxy_config({{"n", "h", 5432}}, o), std::invalid_argument);
}
