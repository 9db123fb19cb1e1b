#include "autoctl/haproxy_config.h"

#include <fmt/format.h>

#include <regex>
#include <stdexcept>

namespace autoctl {
namespace {

int http_port_of(const HaproxyNode& n, const HaproxyOptions& o) {
    const int p = o.http_port ? *o.http_port : n.port + *o.http_port_offset;
    if (p < 1 || p > 65535) throw std::invalid_argument(fmt::format("node {}: HTTP port {} out of range", n.name, p));
    return p;
}

std::string servers(const std::vector<HaproxyNode>& nodes, const HaproxyOptions& o) {
    std::string out;
    for (const auto& n : nodes)
        out += fmt::format("    server {} {}:{} check port {}\n", n.name, n.host, n.port, http_port_of(n, o));
    return out;
}

}  // namespace

std::string render_haproxy_config(const std::vector<HaproxyNode>& nodes, const HaproxyOptions& o) {
    if (o.http_port.has_value() == o.http_port_offset.has_value())
        throw std::invalid_argument("give exactly one of --http-port and --http-port-offset");
    static const std::regex safe_name(R"([A-Za-z0-9_.-]{1,63})");
    static const std::regex safe_host(R"([A-Za-z0-9_.:-]{1,253})");
    if (!std::regex_match(o.formation, safe_name)) throw std::invalid_argument("formation name unusable: " + o.formation);
    if (!std::regex_match(o.bind, safe_host)) throw std::invalid_argument("--bind: not an address: " + o.bind);
    for (const auto& n : nodes) {
        if (!std::regex_match(n.name, safe_name)) throw std::invalid_argument("node name unusable in haproxy.cfg: " + n.name);
        if (!std::regex_match(n.host, safe_host)) throw std::invalid_argument("node host unusable in haproxy.cfg: " + n.host);
    }
    // IPv6 literals need brackets in a bind line.
    const std::string bind = o.bind.find(':') != std::string::npos ? "[" + o.bind + "]" : o.bind;
    std::string out = fmt::format(
        "# haproxy.cfg for formation {0}, from `autoctl show haproxy` (docs/operations.md).\n"
        "# Writes: {1}:{2} reaches the node whose keeper answers 200 on /primary.\n"
        "# Reads:  {1}:{3} reaches the nodes whose keeper answers 200 on /replica.\n"
        "global\n"
        "    maxconn 1000\n"
        "\n"
        "defaults\n"
        "    mode tcp\n"
        "    timeout connect {4}ms\n"
        "    timeout client 30m\n"
        "    timeout server 30m\n"
        "    timeout check {4}ms\n"
        "    # A refused connect goes back to the client at once: HAProxy's default 3 retries wait 1 s each\n"
        "    # on a primary that just stopped, while the client's own retry reaches the new one.\n"
        "    retries 0\n"
        "\n",
        o.formation, bind, o.primary_port, o.replica_port, o.connect_timeout_ms);
    const std::string defaults_server = fmt::format(
        "    default-server inter {}ms downinter {}ms fall 1 rise 1 on-marked-down shutdown-sessions\n",
        o.check_interval_ms, o.down_check_interval_ms);
    out += fmt::format("listen {}_primary\n    bind {}:{}\n    option httpchk GET /primary\n"
                       "    http-check expect status 200\n{}{}\n",
                       o.formation, bind, o.primary_port, defaults_server, servers(nodes, o));
    out += fmt::format("listen {}_replicas\n    bind {}:{}\n    balance roundrobin\n    option httpchk GET /replica\n"
                       "    http-check expect status 200\n{}{}",
                       o.formation, bind, o.replica_port, defaults_server, servers(nodes, o));
    return out;
}

}  // namespace autoctl
