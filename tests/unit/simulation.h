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
    bool dropped = false;
};

struct SimOptions {
    std::uint64_t seed = 1;
    int node_count = 3;
    int number_sync_standbys = 0;
    bool last_node_async = false;  // the highest node id has replication_quorum = false
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
    int failovers_ = 0;
    int switchovers_ = 0;
};

}  // namespace autofailover::sim
