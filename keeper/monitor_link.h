// The keeper's side of the monitor protocol (docs/architecture.md): one method
// per SQL function, parameters bound. Written on raw async libpq so every round
// trip, connecting included, is bounded by monitor_call_timeout: a monitor
// behind a dead network must never stall the loop (the fencing clock runs).
#pragma once

#include "libautofailover/lsn.h"
#include "libautofailover/node_state.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct pg_conn;

namespace autofailover::keeper {

// The monitor could not be reached in time (network, down, timeout).
class MonitorUnreachable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
// The monitor answered with an ERROR (it refused the request).
class MonitorRefused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Registration {
    std::int64_t node_id = 0;
    std::string node_name;
    int group_id = 0;
    NodeState goal = NodeState::Init;
};

struct NodeReport {
    NodeState reported_state = NodeState::Init;
    bool pg_is_running = false;
    int timeline = 0;
    Lsn lsn = 0;
    std::string sync_state;
};

struct NodeAssignment {
    NodeState goal = NodeState::Init;
    int candidate_priority = 50;
    bool replication_quorum = true;
    std::optional<std::int64_t> primary_node_id;
    std::string primary_host;
    int primary_port = 0;
    std::string synchronous_standby_names;
    std::string upstream_host;
    int upstream_port = 0;
    std::optional<Lsn> upstream_lsn;
    std::optional<std::chrono::milliseconds> network_partition_timeout;
};

struct OtherNode {
    std::int64_t node_id = 0;
    std::string name;
    std::string host;
    int port = 0;
    std::optional<Lsn> lsn;
    bool is_primary = false;
};

class MonitorLink {
public:
    // passfile: pgpass file with the keeper role's password ("" = none), given to
    // libpq as passfile= so the password is in no conninfo and no log.
    MonitorLink(std::string uri, std::string passfile, std::chrono::milliseconds call_timeout);
    ~MonitorLink();
    MonitorLink(const MonitorLink&) = delete;
    MonitorLink& operator=(const MonitorLink&) = delete;

    Registration register_node(const std::string& formation, const std::string& host, int port,
                               const std::string& name, std::optional<int> group, int candidate_priority,
                               bool replication_quorum);
    NodeAssignment node_active(const std::string& formation, std::int64_t node_id, const NodeReport& report);
    std::vector<OtherNode> get_other_nodes(std::int64_t node_id);

    // LISTEN autofailover_state (re-issued after every reconnect). Then
    // wait_for_group_event() sleeps up to `timeout` and returns true early when
    // a notification about (formation, group) arrived.
    void listen_for_state_changes();
    bool wait_for_group_event(const std::string& formation, int group, std::chrono::milliseconds timeout);

    void set_call_timeout(std::chrono::milliseconds timeout) { call_timeout_ = timeout; }
    void disconnect();

private:
    using Row = std::vector<std::optional<std::string>>;
    std::vector<Row> call(const std::string& sql, const std::vector<std::optional<std::string>>& params);
    void connect(std::chrono::steady_clock::time_point deadline);
    void wait_socket(bool for_write, std::chrono::steady_clock::time_point deadline);

    struct ConnDeleter {
        void operator()(pg_conn* conn) const;
    };
    std::string uri_;
    std::string passfile_;
    std::chrono::milliseconds call_timeout_;
    std::unique_ptr<pg_conn, ConnDeleter> conn_;
    bool want_listen_ = false;
    bool listening_ = false;
};

}  // namespace autofailover::keeper
