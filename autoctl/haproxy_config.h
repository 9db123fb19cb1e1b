// `autoctl show haproxy`: an haproxy.cfg whose health checks are the keepers'
// HTTP endpoints (/primary, /replica). Pure: rendered from the monitor's node list.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace autoctl {

struct HaproxyNode {
    std::string name;
    std::string host;
    int port = 0;
};

struct HaproxyOptions {
    std::string formation = "default";
    std::string bind = "127.0.0.1";
    int primary_port = 5000;  // frontend port of writes
    int replica_port = 5001;  // frontend port of reads
    // The monitor does not store HTTP ports: either the same port on every node,
    // or each node's Postgres port plus an offset (several nodes on one host).
    std::optional<int> http_port;
    std::optional<int> http_port_offset;
    int check_interval_ms = 500;       // checks of a server that is up
    int down_check_interval_ms = 100;  // of a server that is down: a new primary is seen quickly
    int connect_timeout_ms = 2000;
};

// Throws std::invalid_argument on an unusable option or node (names and hosts
// are validated: they are written into the configuration file).
std::string render_haproxy_config(const std::vector<HaproxyNode>& nodes, const HaproxyOptions& options);

}  // namespace autoctl
