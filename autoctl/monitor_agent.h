// Replicated monitors (docs/monitor-ha.md): `autoctl create monitor --etcd`
// builds a leader or a standby monitor, `autoctl run-monitor` runs the agent
// that holds this monitor's etcd lease, campaigns for the leader key, renews
// the leader lease inside Postgres, promotes or rejoins its Postgres and keeps
// the leader's synchronous replication in step with etcd's `sync` key.
#pragma once

#include "autoctl/monitor_setup.h"

#include <string>
#include <vector>

namespace autoctl {

// Every wait of the agent, a named setting (monitor.json "timeouts").
struct MonitorHaTimeouts {
    int lease_ttl_ms = 3000;            // etcd lease TTL (whole seconds, at least 2 s)
    int renew_period_ms = 500;          // one agent round: keepalive, renew, campaign, sync
    int lease_margin_ms = 500;          // Postgres deadline = keepalive send time + TTL - margin
    int etcd_request_timeout_ms = 400;  // one HTTP request to one etcd endpoint
    int promote_timeout_ms = 30000;     // pg_promote(wait => true)
};

struct MonitorHaConfig {
    std::string name;     // [A-Za-z0-9_]: application_name, synchronous_standby_names, etcd member key
    std::string cluster;  // etcd key prefix /autofailover/<cluster>/
    std::vector<std::string> etcd;
    MonitorSetup setup;   // how `create monitor` was called: the agent rewrites the files after a rewind
    MonitorHaTimeouts timeouts;
    // The leading agent hands etcd's raft leadership away from the etcd member on its own machine
    // (monitor.json "keep_etcd_leader_elsewhere"; docs/monitor-ha.md, "Takeover time").
    bool keep_etcd_leader_elsewhere = true;
};

// <pgdata>.monitor/monitor.json: outside the data directory, so neither a base
// backup nor pg_rewind copies it; mode 0600.
std::string monitor_ha_config_path(const std::string& pgdata);
bool has_monitor_ha_config(const std::string& pgdata);
MonitorHaConfig load_monitor_ha_config(const std::string& pgdata);

// create monitor --etcd [--standby-of CONNINFO]: checks etcd, builds the monitor
// (initdb, or a base backup of the leader for a standby), saves monitor.json.
MonitorUris create_replicated_monitor(MonitorHaConfig& config, const std::string& standby_of);

// The agent, in the foreground until SIGINT/SIGTERM (then it releases the
// leadership and stops Postgres). Returns the exit status.
int run_monitor_agent(const std::string& pgdata);

// `autoctl show monitors`: members, leader, lag, who may take over.
void show_monitors(const std::vector<std::string>& etcd, const std::string& cluster, int request_timeout_ms,
                   bool json);

}  // namespace autoctl
