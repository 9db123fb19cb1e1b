// The keeper's side of the monitor protocol (docs/architecture.md): one method
// per SQL function, parameters bound. Written on raw async libpq so every round
// trip, connecting included, is bounded by monitor_call_timeout: a monitor
// behind a dead network must never stall the loop (the fencing clock runs).
#pragma once

#include "keeper/keeper_state.h"
#include "libautofailover/lsn.h"
#include "libautofailover/node_state.h"

#include <atomic>
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

// How the keeper logs in to the monitor: host, port, database and TLS options
// come from the URI; `user` and `passfile` replace the URI's user and password
// (docs/security.md, "Keeper identity").
struct MonitorLogin {
    std::string uri;
    std::string user;      // "": the URI's user (and password)
    std::string passfile;  // pgpass file holding `user`'s password ("": none)
};

struct Registration {
    std::int64_t node_id = 0;
    std::string node_name;
    int group_id = 0;
    NodeState goal = NodeState::Init;
    // This node's own monitor role and its password, handed out once.
    std::string keeper_role;
    std::string keeper_password;
    // The formation's replication password (autofailover_replicator).
    std::string replication_password;
};

// A standby streaming from this node, as pg_stat_replication shows it.
struct StreamingStandbyReport {
    std::int64_t node_id = 0;
    Lsn flush_lsn = 0;
};

struct NodeReport {
    NodeState reported_state = NodeState::Init;
    bool pg_is_running = false;
    int timeline = 0;
    Lsn lsn = 0;
    std::string sync_state;
    // The monitor makes a standby secondary only once its primary reports it here.
    std::vector<StreamingStandbyReport> streaming_standbys;
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
    // False when the monitor answered without a valid leader lease (a replicated monitor cut from etcd): it
    // recorded the report and returned its stored goal, but it is no monitor contact (docs/monitor-ha.md, M4).
    bool monitor_leads = true;
    // The version of the formation's client access on the monitor (0: never set); when it differs from
    // the one applied, the keeper calls formation_client_access() (docs/clients.md).
    std::int64_t client_access_version = 0;
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
    MonitorLink(MonitorLogin login, std::chrono::milliseconds call_timeout);
    ~MonitorLink();
    MonitorLink(const MonitorLink&) = delete;
    MonitorLink& operator=(const MonitorLink&) = delete;

    Registration register_node(const std::string& formation, const std::string& host, int port,
                               const std::string& name, std::optional<int> group, int candidate_priority,
                               bool replication_quorum);
    NodeAssignment node_active(const std::string& formation, std::int64_t node_id, const NodeReport& report);
    std::vector<OtherNode> get_other_nodes(std::int64_t node_id);
    // This node's pre_promote hook vetoed its promotion (docs/operations.md, "Hooks");
    // returns the goal the monitor decided next.
    NodeState report_promotion_veto(const std::string& formation, std::int64_t node_id, const std::string& reason);
    // The formation's client networks (autoctl set formation allow-clients), as stored: not validated here.
    FormationClients formation_client_access(const std::string& formation);
    // adopt_node on a new, empty monitor (docs/monitor-ha.md, M6): the node keeps its
    // id, name, group, priority and quorum; returns its new role and password.
    Registration adopt_node(const std::string& formation, std::int64_t node_id, const std::string& name,
                            const std::string& host, int port, int group, NodeState reported, int timeline, Lsn lsn,
                            int candidate_priority, bool replication_quorum,
                            const std::optional<std::string>& system_identifier);

    // LISTEN autofailover_state (re-issued after every reconnect). Then
    // wait_for_group_event() sleeps up to `timeout` and returns true early when
    // a notification about (formation, group) arrived.
    void listen_for_state_changes();
    bool wait_for_group_event(const std::string& formation, int group, std::chrono::milliseconds timeout);

    void set_call_timeout(std::chrono::milliseconds timeout) { call_timeout_ = timeout; }
    // Takes effect at the next connection.
    void set_login(MonitorLogin login) { login_ = std::move(login); }
    void disconnect();
    // Empty when the monitor's loaded library matches its installed SQL, else what is wrong.
    std::string version_mismatch();

private:
    using Row = std::vector<std::optional<std::string>>;
    std::vector<Row> call(const std::string& sql, const std::vector<std::optional<std::string>>& params);
    void connect(std::chrono::steady_clock::time_point deadline);
    void wait_socket(bool for_write, std::chrono::steady_clock::time_point deadline);
    // After an answer from a monitor without the leader lease: the next connection starts from the next host
    // of the URI, since target_session_attrs=read-write cannot tell a fenced old leader from the new one.
    void disconnect_and_try_next_host();
    // Asks the server to cancel the query in flight, from a short-lived thread
    // (PQcancel blocks on its own connection), so a backend stuck on a lock does
    // not outlive our timeout. At most one such request is under way at a time.
    void cancel_query_in_flight();

    struct ConnDeleter {
        void operator()(pg_conn* conn) const;
    };
    MonitorLogin login_;
    std::shared_ptr<std::atomic<bool>> cancel_under_way_ = std::make_shared<std::atomic<bool>>(false);
    std::chrono::milliseconds call_timeout_;
    std::unique_ptr<pg_conn, ConnDeleter> conn_;
    bool want_listen_ = false;
    bool listening_ = false;
    std::size_t host_rotation_ = 0;
};

// Both sides of the monitor's version check (monitor_ext/library_version.cpp): the
// version its library was built for and the installed SQL's, in one row.
inline constexpr const char* kMonitorVersionsQuery =
    "SELECT autofailover.library_version(), "
    "(SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'autofailover')";
// Empty when they match; otherwise a sentence for a warning (keeper and autoctl).
std::string monitor_version_mismatch(const std::optional<std::string>& library,
                                     const std::optional<std::string>& installed);

}  // namespace autofailover::keeper
