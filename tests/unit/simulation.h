// A deterministic model of a group (monitor + keepers + Postgres + network +
// clients) driven by the real decision function and transition table, with
// random faults and operator commands, checking the safety properties after
// every step. See test_simulation.cpp.
#pragma once

#include "libautofailover/decide.h"
#include "libautofailover/keeper_transitions.h"
#include "libautofailover/settings.h"

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace autofailover::sim {

// One node_active call in flight: the report as the keeper sent it and, once the
// monitor served it, the answer on its way back.
struct SimCall {
    std::uint64_t id = 0;
    NodeId node = 0;
    int session = 0;           // the keeper's connection to the monitor
    TimePoint sent_real{};     // real time the request left
    TimePoint sent_keeper{};   // the same instant on the keeper's clock (its contact time)
    TimePoint deliver_real{};  // when it reaches the monitor (a cut path retransmits until healed)
    std::chrono::milliseconds answer_delay{0};
    TimePoint deadline_real{};  // the keeper gives up then (call timeout, fencing deadline)
    // The report.
    NodeState reported = NodeState::Init;
    bool pg_running = false;
    int timeline = 0;
    Lsn lsn = 0;
    std::vector<StreamingStandby> streaming;
    // The answer, once served.
    bool answered = false;
    TimePoint answer_real{};
    NodeState goal = NodeState::Init;
    std::string sync_names;
    std::optional<NodeId> primary;       // where a standby streams from (assignment's primary_host)
    std::optional<NodeId> upstream;      // fast-forward source (assignment's upstream_host)
};

struct SimNode {
    NodeId id = 0;
    // Machine and network.
    bool machine_up = true;
    bool isolated = false;     // reaches nobody
    bool monitor_cut = false;  // reaches the other nodes, not the monitor
    bool lagging = false;      // its walreceiver gets nothing for now
    // Postgres.
    bool pg_running = false;
    bool in_recovery = true;  // false: its data directory is a primary's
    bool has_data = false;
    std::vector<std::int64_t> wal;  // commit ids in WAL order; LSN = size + 1
    int timeline = 1;
    std::optional<NodeId> upstream;
    int sync_n = 0;                // synchronous_standby_names in force: ANY sync_n (sync_list); 0 = ''
    std::vector<NodeId> sync_list;
    // Keeper.
    NodeState current = NodeState::Init;
    NodeState goal = NodeState::Init;
    std::string sync_names_from_monitor;
    std::optional<TimePoint> last_monitor_contact;
    std::optional<TimePoint> last_standby_contact;
    std::optional<NodeId> assigned_primary;   // from the last answer
    std::optional<NodeId> assigned_upstream;  // from the last answer
    std::optional<SimCall> call;              // the node_active call the keeper waits for
    int session = 0;                          // its connection: a new one after a given-up call or a restart
    int restart_attempts = 0;                 // of a crashed writable Postgres, within the budget
    bool dropped = false;
    // Clocks: the keeper's clock runs at (1 + rate_ppm / 1e6) of real time; wall_offset is
    // what this host's wall clock (pg_stat_replication.reply_time) is ahead of real time.
    double rate_ppm = 0;
    std::chrono::milliseconds wall_offset{0};
    // Primary side: the real time each standby last replied (pg_stat_replication); a
    // row lives until the standby disconnects cleanly or Postgres stops.
    std::vector<std::pair<NodeId, TimePoint>> replies;
};

struct SimOptions {
    std::uint64_t seed = 1;
    int node_count = 3;
    int number_sync_standbys = 0;
    bool last_node_async = false;  // the highest node id has replication_quorum = false
    // Network and clocks within the documented bounds (docs/fsm.md, "What the proof assumes").
    bool delays = true;  // delayed node_active requests and answers; across keepers they arrive reordered
    // Also serve requests their keeper gave up on, after its newer ones (up to 10 s late).
    bool stale_requests = true;
    // The monitor refuses a report from an older session of the keeper than the one that
    // stored the last report (monitor_ext/node_active.cpp). Off: the bug.
    bool refuse_stale_sessions = true;
    std::chrono::milliseconds max_wall_offset{200};  // data nodes' wall clocks within +-this of real time
    double max_rate_ppm = 1000;                    // every clock's rate within +-this of real time
};

class Simulation {
public:
    explicit Simulation(const SimOptions& options);

    // `steps` random steps (faults, operator commands, writes); false on a violation.
    bool run_random(int steps);
    // Heal every fault, end maintenance, restore priorities, then step without
    // faults until one primary and all others secondary; false if not within max_steps.
    bool heal_and_converge(int max_steps);

    const std::string& failure() const { return failure_; }
    std::string trace() const;  // the last steps, oldest first
    int steps_run() const { return step_; }
    std::uint64_t acknowledged_commits() const { return acked_.size(); }
    int promotions() const { return promotions_; }
    int failovers() const { return failovers_; }
    // Assignments a later rule of the same decide() pass wanted otherwise (Decision::shadowed), and which rule won.
    int overridden() const { return overridden_; }
    const std::set<std::string>& overrides() const { return overrides_; }
    int switchovers() const { return switchovers_; }
    // Every (reported state, assigned goal) seen.
    const std::set<std::pair<NodeState, NodeState>>& assigned_pairs() const { return assigned_pairs_; }

private:
    // One step: time passes, maybe a fault/command, clients write, keepers act, monitor decides.
    bool step(bool faults);
    void random_event();
    void client_writes();
    void replicate();
    void acknowledge_pending();
    void keeper_step(SimNode& node);
    // node_active: send (served at once when the path has no delay), serve, receive.
    void send_report(SimNode& node);
    void serve(SimCall& call);
    void deliver_requests();
    void track_standby_replies(SimNode& primary);
    void check_fencing(SimNode& node);
    TimePoint keeper_now(const SimNode& node) const;
    TimePoint monitor_now() const;
    bool run_action(SimNode& node, const KeeperTransition& edge);
    void monitor_step();
    void apply_decision(const Decision& decision, const std::string& origin);
    bool check_invariants();

    // Helpers.
    SimNode& node(NodeId id);
    NodeSnapshot& row(NodeId id);
    bool reach(const SimNode& a, const SimNode& b) const;
    bool reaches_monitor(const SimNode& n) const;
    bool acting_primary(const SimNode& n) const;  // running as a primary
    bool can_acknowledge(const SimNode& n) const;
    bool streams_from(const SimNode& standby, const SimNode& primary) const;
    void copy_wal(SimNode& to, const SimNode& from);
    void fail(const std::string& what);
    void log(const std::string& line);
    int rand(int n);  // [0, n)

    SimOptions options_;
    std::mt19937_64 rng_;
    TimePoint real_start_{};
    TimePoint real_{};         // real time; the monitor's and keepers' clocks derive from it
    double monitor_rate_ppm_ = 0;
    std::vector<SimCall> in_flight_;  // requests not yet served (also those their keeper gave up on)
    std::vector<std::pair<NodeId, int>> report_session_;  // the monitor's nodes.report_session
    std::uint64_t next_call_ = 1;
    FormationSettings settings_;
    MonitorClock clock_;
    GroupSnapshot monitor_;  // the monitor's tables
    bool monitor_down_ = false;
    std::vector<SimNode> nodes_;
    std::int64_t next_commit_ = 1;
    std::vector<std::pair<std::size_t, std::int64_t>> acked_;  // (position in WAL, commit id)
    struct Pending {
        NodeId primary;
        std::size_t position;
        std::int64_t commit;
    };
    std::vector<Pending> pending_;
    std::set<std::pair<NodeState, NodeState>> assigned_pairs_;
    std::deque<std::string> trace_;
    std::string step_log_;
    std::string failure_;
    int step_ = 0;
    int promotions_ = 0;
    int overridden_ = 0;
    std::set<std::string> overrides_;
    int failovers_ = 0;
    int switchovers_ = 0;
};

}  // namespace autofailover::sim
