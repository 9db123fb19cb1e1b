// The operator's connection to the monitor: one method per SQL function of the
// monitor's API (docs/architecture.md), parameters always bound. Connection
// failures and refusals become CliError(MonitorError) with the monitor's own
// message, which says what to do.
#pragma once

#include <pqxx/pqxx>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace autoctl {

// One row of autofailover.current_state().
struct NodeRow {
    long long node_id = 0;
    std::string name;
    int group_id = 0;
    std::string host;
    int port = 0;
    std::string reported_state;
    std::string goal_state;
    int timeline = 0;
    std::string lsn;
    std::string health;
    bool pg_is_running = false;
    std::optional<double> seconds_since_report;  // empty: the keeper never reported
    bool keeper_reporting = false;
    int candidate_priority = 0;
    bool replication_quorum = false;
    std::string sync_state;
    std::string waiting_reason;
};

// One row of autofailover.last_events().
struct EventRow {
    long long event_id = 0;
    std::string event_time;
    long long node_id = 0;
    std::string node_name;
    int group_id = 0;
    std::string reported_state;
    std::string goal_state;
    std::string description;
};

class MonitorClient {
public:
    explicit MonitorClient(const std::string& uri);
    ~MonitorClient();
    MonitorClient(const MonitorClient&) = delete;
    MonitorClient& operator=(const MonitorClient&) = delete;

    std::vector<NodeRow> current_state(const std::string& formation);
    std::vector<EventRow> last_events(const std::string& formation, int count);
    std::vector<std::pair<std::string, std::string>> formation_settings(const std::string& formation);
    std::string synchronous_standby_names(const std::string& formation, int group);
    std::string formation_uri(const std::string& formation, const std::string& sslmode);

    void perform_switchover(const std::string& formation, int group);
    void perform_failover(const std::string& formation, int group, bool accept_data_loss);
    bool perform_promotion(const std::string& formation, const std::string& node_name);
    bool start_maintenance(const std::string& formation, const std::string& node_name);
    bool stop_maintenance(const std::string& formation, const std::string& node_name);
    bool set_candidate_priority(const std::string& formation, const std::string& node_name, int priority);
    bool set_replication_quorum(const std::string& formation, const std::string& node_name, bool quorum);
    bool set_number_sync_standbys(const std::string& formation, int number);
    bool remove_node_by_name(const std::string& formation, const std::string& node_name, bool force);

    // LISTEN on autofailover_state; later calls to wait_for_notifications()
    // return the payloads that arrived.
    void listen_for_state_changes();
    std::vector<std::string> wait_for_notifications(std::chrono::milliseconds timeout);

private:
    void warn_on_version_mismatch();
    class StateReceiver;
    template <typename Fn>
    auto guarded(const char* what, Fn&& fn);

    std::string redacted_uri_;
    std::unique_ptr<pqxx::connection> conn_;
    std::unique_ptr<StateReceiver> receiver_;
    std::vector<std::string> pending_;
};

// The URI without its password, fit for messages and logs.
std::string redact_uri(const std::string& uri);

}  // namespace autoctl
