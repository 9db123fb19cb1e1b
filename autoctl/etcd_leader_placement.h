// Keeps etcd's raft leader off the leading monitor's machine. Losing the machine that holds both costs an
// etcd election and etcd's lease extension on top of the lease TTL before a standby monitor may lead
// (docs/monitor-ha.md, "Takeover time"); with etcd's leader elsewhere, only the TTL is waited for.
// MoveLeader is etcd's own leadership transfer: raft still decides, nothing here votes.
#pragma once

#include "autoctl/etcd_client.h"

#include <optional>
#include <set>
#include <string>

namespace autoctl {

class EtcdLeaderPlacement {
public:
    EtcdLeaderPlacement(etcd::Client& etcd, std::string monitor_name) : etcd_(etcd), monitor_(std::move(monitor_name)) {}

    // Once a round by the leading agent: when the etcd member on this machine leads etcd, hand etcd's
    // leadership to another member that answers. Never throws: placement only shortens a takeover.
    void keep_leader_elsewhere();
    // Leadership of the monitor ended: look the local member up again next time (members may change).
    void forget() { looked_up_ = false; }

private:
    bool look_up_local_member();

    etcd::Client& etcd_;
    std::string monitor_;
    bool looked_up_ = false;
    std::optional<etcd::Member> local_;   // the one etcd member on this machine, if exactly one is
    std::string local_endpoint_;          // its client URL on this machine
    std::string last_problem_;            // logged once until it changes
};

// "http://host:port" → "host".
std::string url_host(const std::string& url);
// Numeric addresses of this machine's (this network namespace's) interfaces.
std::set<std::string> local_addresses();
// `host` (numeric or a name) resolves to one of `addresses`.
bool host_is_local(const std::string& host, const std::set<std::string>& addresses);

}  // namespace autoctl
