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

// One sample of autofailover.metrics(): labels already in the Prometheus text format,
// value as Postgres printed the float8 (shortest exact form, NaN).
struct MetricRow {
    std::string name;
    std::string labels;
    std::string value;
    std::string type;
    std::string help;
};

// One row of autofailover.plan_operation() (--dry-run).
struct PlanRow {
    long long node_id = 0;
    std::string name;
    std::string reported_state;
    std::string goal_state;
    std::string planned_goal;  // "" when the plan leaves the node's goal as it is
    std::string reason;
    int timeline = 0;
    std::string lsn;
    bool is_primary = false;
    std::optional<unsigned long long> behind_primary;  // bytes; empty without a primary on the same timeline
    bool would_be_promoted = false;
    std::string waiting_reason;
    long long would_wait_ms = 0;  // simulated time the formation would wait on the way
    std::string would_wait_for;   // why
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
    // autoctl set formation allow-clients (docs/clients.md): returns the new version.
    long long set_formation_allow_clients(const std::string& formation, const std::vector<std::string>& networks,
                                          const std::string& client_database, const std::string& client_role);
    struct FormationClientAccess {
        long long version = 0;
        std::vector<std::string> networks;
        std::string client_database;
        std::string client_role;
    };
    FormationClientAccess formation_client_access(const std::string& formation);

    // autofailover.metrics(formation), every formation when empty.
    std::vector<MetricRow> metrics(const std::string& formation);

    // autofailover.plan_operation(): the command planned and simulated, nothing written.
    std::vector<PlanRow> plan_operation(const std::string& command, const std::string& formation, int group,
                                        const std::string& node_name, bool accept_data_loss);

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
