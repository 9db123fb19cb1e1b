#include "autoctl/etcd_leader_placement.h"

#include "keeper/keeper_log.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <stdexcept>

namespace autoctl {

namespace {

using autofailover::keeper::log_info;
using autofailover::keeper::log_warn;

std::string numeric_address(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
    return buf;
}

}  // namespace

std::string url_host(const std::string& url) {
    std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);  // [v6]:port
    return rest.substr(0, rest.rfind(':'));
}

std::set<std::string> local_addresses() {
    std::set<std::string> out;
    ifaddrs* raw = nullptr;
    if (getifaddrs(&raw) != 0) return out;
    std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> list(raw, &freeifaddrs);
    for (const ifaddrs* it = list.get(); it != nullptr; it = it->ifa_next)
        if (it->ifa_addr != nullptr) {
            std::string a = numeric_address(it->ifa_addr);
            if (!a.empty()) out.insert(a);
        }
    return out;
}

bool host_is_local(const std::string& host, const std::set<std::string>& addresses) {
    if (addresses.count(host)) return true;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* raw = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &raw) != 0) return false;
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(raw, &freeaddrinfo);
    for (const addrinfo* it = list.get(); it != nullptr; it = it->ai_next)
        if (addresses.count(numeric_address(it->ai_addr))) return true;
    return false;
}

bool EtcdLeaderPlacement::look_up_local_member() {
    local_.reset();
    const auto members = etcd_.members();
    looked_up_ = true;
    const auto addresses = local_addresses();
    int on_this_machine = 0;
    for (const auto& m : members)
        for (const auto& url : m.client_urls)
            if (host_is_local(url_host(url), addresses)) {
                ++on_this_machine;
                local_ = m;
                local_endpoint_ = url;
                break;
            }
    if (on_this_machine == 1) {
        log_info("monitor={} etcd member {} runs on this machine: etcd's leader is kept on another member",
                 monitor_, local_->name);
        return true;
    }
    // None: etcd runs elsewhere, nothing to move. Several (one machine, tests): moving would not help.
    if (on_this_machine > 1)
        log_info("monitor={} {} etcd members run on this machine: etcd's leader is left where it is", monitor_,
                 on_this_machine);
    local_.reset();
    return false;
}

void EtcdLeaderPlacement::keep_leader_elsewhere() {
    try {
        if (!looked_up_ && !look_up_local_member()) return;
        if (!local_) return;
        const etcd::EndpointStatus mine = etcd_.status(local_endpoint_);
        if (mine.leader_id != local_->id) return;
        for (const auto& m : etcd_.members()) {
            if (m.id == local_->id || m.client_urls.empty()) continue;
            try {
                // A member that answers and follows the same leader can take over at once.
                if (etcd_.status(m.client_urls.front()).leader_id != local_->id) continue;
            } catch (const etcd::EtcdError&) {
                continue;
            }
            etcd_.move_leader(local_endpoint_, m.id);
            log_info("monitor={} moved etcd's leader from {} (this machine) to {}", monitor_, local_->name, m.name);
            last_problem_.clear();
            return;
        }
        const std::string problem = "no other etcd member answers: etcd's leader stays on this machine";
        if (problem != last_problem_) log_warn("monitor={} {}", monitor_, problem);
        last_problem_ = problem;
    } catch (const std::exception& e) {
        const std::string problem = std::string("could not place etcd's leader: ") + e.what();
        if (problem != last_problem_) log_warn("monitor={} {}", monitor_, problem);
        last_problem_ = problem;
    }
}

}  // namespace autoctl
