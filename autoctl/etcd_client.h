// A small client of etcd v3's JSON gateway (http://host:2379/v3/...), the one
// consensus the control plane uses: which monitor leads (docs/monitor-ha.md).
// Keys and values are base64 on the wire; int64 fields arrive as strings.
// Every request tries the endpoints in turn, starting with the last one that
// answered, each within the request timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace autoctl::etcd {

// No endpoint answered, or etcd refused the request.
class EtcdError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct KeyValue {
    std::string key;
    std::string value;
    std::int64_t create_revision = 0;
    std::int64_t mod_revision = 0;
    std::int64_t lease = 0;
};

// One condition of a transaction.
struct Compare {
    enum class Target { CreateRevision, ModRevision, Value };
    std::string key;
    Target target = Target::CreateRevision;
    std::int64_t revision = 0;  // CreateRevision / ModRevision (0: the key does not exist)
    std::string value;          // Value
};

// One write of a transaction: a put (with a lease, 0: none) or a delete.
struct Write {
    std::string key;
    std::string value;
    std::int64_t lease = 0;
    bool remove = false;
};

struct LeaseGrant {
    std::int64_t id = 0;
    std::int64_t ttl_seconds = 0;
};

// One member of the etcd cluster (ids are uint64; the gateway spells them as strings).
struct Member {
    std::uint64_t id = 0;
    std::string name;
    std::vector<std::string> client_urls;
};

// What one endpoint says of itself: its member id and the raft leader it follows (0: none).
struct EndpointStatus {
    std::uint64_t member_id = 0;
    std::uint64_t leader_id = 0;
};

class Client {
public:
    // endpoints: "http://127.0.0.1:2379", ... (http only: etcd's TLS options are not supported yet).
    Client(std::vector<std::string> endpoints, std::chrono::milliseconds request_timeout);

    LeaseGrant grant_lease(std::int64_t ttl_seconds);
    // The TTL etcd restarted the lease with, 0 when the lease no longer exists.
    std::int64_t keepalive(std::int64_t lease_id);
    void revoke(std::int64_t lease_id);

    std::optional<KeyValue> get(const std::string& key);
    std::vector<KeyValue> get_prefix(const std::string& prefix);
    void put(const std::string& key, const std::string& value, std::int64_t lease = 0);
    // True when every comparison held and the writes were applied.
    bool txn(const std::vector<Compare>& compares, const std::vector<Write>& on_success);

    std::vector<Member> members();
    // These two ask one given endpoint (a client URL of a member), not any of them.
    EndpointStatus status(const std::string& endpoint);
    // MoveLeader: etcd accepts it only from the current raft leader's endpoint.
    void move_leader(const std::string& leader_endpoint, std::uint64_t target_id);

    const std::vector<std::string>& endpoints() const { return endpoints_; }

private:
    std::string post(const std::string& path, const std::string& body);
    // One endpoint, one attempt: the body on HTTP 200, nullopt with `errors` extended otherwise.
    std::optional<std::string> post_once(const std::string& endpoint, const std::string& path,
                                         const std::string& body, std::string& errors);

    std::vector<std::string> endpoints_;
    std::chrono::milliseconds request_timeout_;
    std::size_t preferred_ = 0;
};

// "http://a:2379,http://b:2379" → endpoints; throws EtcdError on anything that is not http://host:port.
std::vector<std::string> parse_endpoints(const std::string& list);

std::string base64_encode(const std::string& raw);
std::string base64_decode(const std::string& encoded);

}  // namespace autoctl::etcd
