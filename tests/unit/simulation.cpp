#include "simulation.h"

#include "libautofailover/lsn.h"
#include "libautofailover/operator_commands.h"
#include "libautofailover/partition.h"
#include "libautofailover/replication_names.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace autofailover::sim {

namespace {

using S = NodeState;
using std::chrono::milliseconds;

// Keeper defaults (keeper/keeper_config.h) the model follows.
constexpr milliseconds kMonitorCallTimeout{1000};
constexpr int kRestartBudget = 3;  // postgres_restart_max_retries
// A walsender row counts as streaming while its standby replied within two
// wal_receiver_status_interval (keeper/local_postgres.cpp), on the primary's wall clock.
constexpr milliseconds kReplyWindow{20000};
// A request the monitor serves late (the keeper gave up on it: it waited for the
// group lock, or was retransmitted after a partition healed) arrives within this
// bound or never: lock waits of keepers end after 2 x keeper_transaction_limit (5 s).
constexpr milliseconds kStaleRequestBound{10000};

TimePoint scaled(TimePoint start, TimePoint real, double rate_ppm) {
    const auto elapsed = real - start;
    return real + Clock::duration(static_cast<Clock::duration::rep>(static_cast<double>(elapsed.count()) * rate_ppm / 1e6));
}

const std::size_t kTraceSteps = std::getenv("AUTOFAILOVER_SIM_TRACE") ? std::strtoul(std::getenv("AUTOFAILOVER_SIM_TRACE"), nullptr, 10) : 80;

bool is_prefix(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
    return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

bool needs_running(S s) {
    switch (s) {
        case S::Single: case S::WaitPrimary: case S::Primary: case S::JoinPrimary: case S::ApplySettings:
        case S::Catchingup: case S::Secondary: case S::PreparePromotion: case S::StopReplication:
        case S::ReportLsn: case S::FastForward: case S::JoinSecondary: case S::WaitMaintenance:
            return true;
        default:
            return false;
    }
}

// "ANY n (autofailover_node_1, autofailover_node_3)" -> n and ids.
std::pair<int, std::vector<NodeId>> parse_names(const std::string& names) {
    if (names.empty()) return {0, {}};
    std::pair<int, std::vector<NodeId>> out;
    std::istringstream in(names.substr(4));
    in >> out.first;
    const std::string prefix = "autofailover_node_";
    for (std::size_t at = names.find(prefix); at != std::string::npos; at = names.find(prefix, at + 1))
        out.second.push_back(std::stoll(names.substr(at + prefix.size())));
    return out;
}

}  // namespace

Simulation::Simulation(const SimOptions& options) : options_(options), rng_(options.seed) {
    settings_.number_sync_standbys = options.number_sync_standbys;
    settings_.enable_sync_wal_threshold = 2;  // in commits: LSN = WAL length + 1
    real_start_ = real_ = TimePoint{} + std::chrono::hours(1);
    const auto pick_rate = [&] {
        const int span = static_cast<int>(options.max_rate_ppm);
        return span > 0 ? static_cast<double>(rand(2 * span + 1) - span) : 0.0;
    };
    monitor_rate_ppm_ = pick_rate();
    clock_.monitor_started = real_;
    clock_.now = monitor_now();
    monitor_.formation = "default";
    for (int i = 1; i <= options.node_count; ++i) {
        SimNode n;
        n.id = i;
        n.rate_ppm = pick_rate();
        const int offset = static_cast<int>(options.max_wall_offset.count());
        n.wall_offset = milliseconds(offset > 0 ? rand(2 * offset + 1) - offset : 0);
        nodes_.push_back(n);
        const Assignment a = initial_assignment(monitor_, i, 50);
        NodeSnapshot r;
        r.id = i;
        r.name = "node_" + std::to_string(i);
        r.goal_state = a.goal;
        r.goal_assigned_at = clock_.now;
        r.replication_quorum = !(options.last_node_async && i == options.node_count);
        monitor_.nodes.push_back(r);
        nodes_.back().goal = a.goal;
    }
}

SimNode& Simulation::node(NodeId id) {
    for (auto& n : nodes_)
        if (n.id == id) return n;
    throw std::logic_error("no node " + std::to_string(id));
}

NodeSnapshot& Simulation::row(NodeId id) {
    for (auto& r : monitor_.nodes)
        if (r.id == id) return r;
    throw std::logic_error("no row " + std::to_string(id));
}

TimePoint Simulation::keeper_now(const SimNode& n) const { return scaled(real_start_, real_, n.rate_ppm); }
TimePoint Simulation::monitor_now() const { return scaled(real_start_, real_, monitor_rate_ppm_); }

int Simulation::rand(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }

bool Simulation::reach(const SimNode& a, const SimNode& b) const {
    return a.machine_up && b.machine_up && !a.isolated && !b.isolated;
}

bool Simulation::reaches_monitor(const SimNode& n) const {
    return !monitor_down_ && n.machine_up && !n.isolated && !n.monitor_cut;
}

bool Simulation::acting_primary(const SimNode& n) const {
    return n.machine_up && n.pg_running && !n.in_recovery;
}

bool Simulation::streams_from(const SimNode& standby, const SimNode& primary) const {
    return standby.pg_running && standby.in_recovery && standby.upstream == primary.id && !standby.lagging &&
           reach(standby, primary) && is_prefix(standby.wal, primary.wal);
}

// A primary acknowledges a commit once ANY n of its list hold it ('' : at once).
bool Simulation::can_acknowledge(const SimNode& p) const {
    if (!acting_primary(p)) return false;
    if (p.sync_n == 0) return true;
    int streaming = 0;
    for (NodeId id : p.sync_list)
        for (const auto& s : nodes_)
            if (s.id == id && streams_from(s, p)) ++streaming;
    return streaming >= p.sync_n;
}

void Simulation::copy_wal(SimNode& to, const SimNode& from) {
    to.wal = from.wal;
    to.timeline = from.timeline;
    to.has_data = true;
}

void Simulation::fail(const std::string& what) {
    if (failure_.empty()) failure_ = "step " + std::to_string(step_) + ": " + what;
}

void Simulation::log(const std::string& line) { step_log_ += "  " + line + "\n"; }

std::string Simulation::trace() const {
    std::string out;
    for (const auto& s : trace_) out += s;
    return out;
}

bool Simulation::run_random(int steps) {
    for (int i = 0; i < steps; ++i)
        if (!step(true)) return false;
    return true;
}

bool Simulation::heal_and_converge(int max_steps) {
    step_log_.clear();
    monitor_down_ = false;
    for (auto& n : nodes_) {
        n.isolated = n.monitor_cut = n.lagging = false;
        n.machine_up = true;
    }
    for (auto& r : monitor_.nodes) r.candidate_priority = 50;
    log("heal: every fault repaired, maintenance over, priorities 50");
    for (int i = 0; i < max_steps; ++i) {
        // The operator ends maintenance (also of a primary that handed over meanwhile).
        for (auto& r : monitor_.nodes)
            if (r.goal_state == S::Maintenance || r.goal_state == S::WaitMaintenance) {
                try {
                    apply_decision(plan_stop_maintenance(monitor_, settings_, clock_, r.id), "operator stop_maintenance");
                } catch (const OperatorError&) {
                }
            }
        if (!step(false)) return false;
        int primaries = 0;
        int secondaries = 0;
        const bool any_quorum_standby = std::any_of(monitor_.nodes.begin(), monitor_.nodes.end(),
                                                    [](const NodeSnapshot& r) { return r.replication_quorum; });
        for (const auto& r : monitor_.nodes) {
            if (r.reported_state != r.goal_state) continue;
            if (r.goal_state == S::Primary || (r.goal_state == S::WaitPrimary && !any_quorum_standby)) ++primaries;
            if (r.goal_state == S::Secondary) ++secondaries;
        }
        if (primaries == 1 && primaries + secondaries == static_cast<int>(monitor_.nodes.size())) return true;
    }
    fail("with every fault healed the group did not converge to one primary and all secondaries within " +
         std::to_string(max_steps) + " steps");
    return false;
}

bool Simulation::step(bool faults) {
    ++step_;
    real_ += milliseconds(100 + rand(400));
    clock_.now = monitor_now();
    std::ostringstream head;
    head << "step " << step_ << " t=+" << std::chrono::duration_cast<milliseconds>(real_ - real_start_).count()
         << "ms\n";
    std::string pre = std::move(step_log_);
    step_log_ = head.str() + pre;
    if (faults && rand(100) < 12) random_event();
    client_writes();
    deliver_requests();
    for (auto& n : nodes_)
        if (!n.dropped) keeper_step(n);
    replicate();
    acknowledge_pending();
    monitor_step();
    const bool ok = check_invariants();
    std::string state;
    for (const auto& r : monitor_.nodes) {
        const SimNode& n = node(r.id);
        state += " n" + std::to_string(r.id) + "=" + std::string(to_string(n.current)) + "/" +
                 std::string(to_string(r.goal_state)) + (n.machine_up ? "" : ",down") + (n.isolated ? ",isolated" : "") +
                 (n.monitor_cut ? ",cut" : "") + (n.pg_running ? "" : ",pgoff") + ",lsn" +
                 std::to_string(n.wal.size() + 1) + ",tl" + std::to_string(n.timeline) + ",p" +
                 std::to_string(r.candidate_priority) +
                 (n.upstream && n.in_recovery ? ",from" + std::to_string(*n.upstream) : "");
    }
    step_log_ += "  =>" + state + "\n";
    trace_.push_back(step_log_);
    if (trace_.size() > kTraceSteps) trace_.pop_front();
    step_log_.clear();
    return ok;
}

void Simulation::random_event() {
    SimNode& n = nodes_[static_cast<std::size_t>(rand(static_cast<int>(nodes_.size())))];
    const std::string who = "node_" + std::to_string(n.id);
    switch (rand(16)) {
        case 0:
            n.machine_up = false;
            n.pg_running = false;
            n.call.reset();  // the keeper process is gone (its request may still arrive)
            ++n.session;
            n.restart_attempts = 0;
            n.replies.clear();
            log("fault: " + who + " machine crashes");
            break;
        case 1: case 2:
            if (!n.machine_up) {
                n.machine_up = true;
                log("fault: " + who + " machine is back (Postgres down, keeper starting)");
            }
            break;
        case 3:
            if (n.pg_running) {
                n.pg_running = false;
                log("fault: " + who + " Postgres killed");
            }
            break;
        case 4:
            n.isolated = true;
            log("fault: " + who + " isolated from the network");
            break;
        case 5: case 6:
            n.isolated = false;
            n.monitor_cut = false;
            log("fault: " + who + " network healed");
            break;
        case 7:
            n.monitor_cut = true;
            log("fault: " + who + " cannot reach the monitor");
            break;
        case 8:
            n.lagging = !n.lagging;
            log("fault: " + who + (n.lagging ? " falls behind" : " streams again"));
            break;
        case 9:
            monitor_down_ = !monitor_down_;
            log(monitor_down_ ? "fault: monitor down" : "fault: monitor back");
            break;
        case 10: case 11: {
            std::optional<NodeId> target;
            if (rand(2)) target = n.id;
            try {
                apply_decision(plan_switchover(monitor_, settings_, clock_, target), "operator switchover");
                ++switchovers_;
            } catch (const OperatorError& e) {
                log(std::string("operator switchover refused: ") + e.what());
            }
            break;
        }
        case 12: {
            static const int priorities[] = {0, 10, 50, 90};
            NodeSnapshot& r = row(n.id);
            const int old = r.candidate_priority;
            r.candidate_priority = priorities[rand(4)];
            log(who + " candidate_priority " + std::to_string(old) + " -> " + std::to_string(r.candidate_priority));
            try {
                apply_decision(plan_apply_settings(monitor_, settings_, clock_, "candidate_priority"), "operator set");
            } catch (const OperatorError& e) {
                r.candidate_priority = old;
                log(std::string("refused: ") + e.what());
            }
            break;
        }
        case 13:
            try {
                apply_decision(plan_start_maintenance(monitor_, settings_, clock_, n.id), "operator start_maintenance");
            } catch (const OperatorError& e) {
                log(std::string("operator start_maintenance refused: ") + e.what());
            }
            break;
        case 14:
            try {
                apply_decision(plan_stop_maintenance(monitor_, settings_, clock_, n.id), "operator stop_maintenance");
            } catch (const OperatorError& e) {
                log(std::string("operator stop_maintenance refused: ") + e.what());
            }
            break;
        default:
            break;  // a quiet step
    }
}

void Simulation::client_writes() {
    // Clients use a multi-host URI: they write to whichever node accepts writes.
    for (auto& p : nodes_) {
        if (!acting_primary(p) || p.isolated) continue;
        const int writes = rand(3);
        for (int i = 0; i < writes; ++i) {
            p.wal.push_back(next_commit_++);
            pending_.push_back(Pending{p.id, p.wal.size() - 1, p.wal.back()});
        }
    }
    replicate();
    acknowledge_pending();
}

void Simulation::replicate() {
    // Twice, so cascading (a standby streaming from a standby) settles too.
    for (int round = 0; round < 2; ++round)
        for (auto& s : nodes_) {
            if (!s.upstream || !s.pg_running || !s.in_recovery || s.lagging) continue;
            SimNode& up = node(*s.upstream);
            if (!up.pg_running || !reach(s, up)) continue;
            if (is_prefix(s.wal, up.wal) && s.wal.size() < up.wal.size()) copy_wal(s, up);
            else if (is_prefix(s.wal, up.wal)) s.timeline = up.timeline;
        }
}

void Simulation::acknowledge_pending() {
    std::vector<Pending> still;
    for (const auto& c : pending_) {
        SimNode& p = node(c.primary);
        if (!acting_primary(p) || p.wal.size() <= c.position || p.wal[c.position] != c.commit) continue;  // client got an error
        bool acked = p.sync_n == 0;
        if (!acked) {
            int holders = 0;
            for (NodeId id : p.sync_list) {
                const SimNode& s = node(id);
                if (streams_from(s, p) && s.wal.size() > c.position) ++holders;
            }
            acked = holders >= p.sync_n;
        }
        if (acked)
            acked_.push_back({c.position, c.commit});
        else
            still.push_back(c);
    }
    pending_ = std::move(still);
}

// Primary side of pg_stat_replication as the keeper reads it (keeper_loop.cpp
// observe_and_track): a standby's last reply is its reply_time, stamped by the
// standby's wall clock and aged by the primary's, so a standby clock that runs
// ahead makes the primary believe in a later contact.
void Simulation::track_standby_replies(SimNode& p) {
    if (!acting_primary(p)) {
        p.replies.clear();  // no walsenders
        return;
    }
    for (const auto& s : nodes_) {
        if (s.id == p.id) continue;
        auto it = std::find_if(p.replies.begin(), p.replies.end(), [&](const auto& r) { return r.first == s.id; });
        if (streams_from(s, p)) {
            if (it == p.replies.end()) p.replies.emplace_back(s.id, real_);
            else it->second = real_;
        } else if (it != p.replies.end() && reach(s, p) &&
                   !(s.pg_running && s.in_recovery && s.upstream == p.id)) {
            p.replies.erase(it);  // the standby disconnected cleanly: its walsender exited
        }
    }
    const TimePoint now = keeper_now(p);
    for (const auto& [id, replied_real] : p.replies) {
        const auto age = std::max(Clock::duration::zero(),
                                  (real_ + p.wall_offset) - (replied_real + node(id).wall_offset));
        if (age > kReplyWindow) continue;  // 'silent'
        const TimePoint replied = now - age;
        if (!p.last_standby_contact || replied > *p.last_standby_contact) p.last_standby_contact = replied;
    }
}

void Simulation::check_fencing(SimNode& n) {
    // Fencing: a primary that reaches neither the monitor nor a standby stops.
    if (!is_writable(n.current) || !n.pg_running) return;
    PartitionView view;
    view.now = keeper_now(n);
    view.last_monitor_contact = n.last_monitor_contact;
    view.last_standby_contact = n.last_standby_contact;
    view.has_standbys = nodes_.size() > 1;
    if (!primary_is_partitioned(view, settings_.timeouts.network_partition_timeout)) return;
    n.pg_running = false;
    n.replies.clear();
    log("keeper node_" + std::to_string(n.id) + ": partitioned, fences its primary (" + std::string(to_string(n.current)) +
        " -> demote_timeout)");
    n.current = S::DemoteTimeout;
}

// node_active leaves the keeper: most calls are served and answered at once; with
// delays on, some take up to 1.5 s to arrive (past the keeper's call timeout: it gives
// up, the monitor serves the report later anyway, after newer ones), some wait up to
// kStaleRequestBound, and some answers come back late.
void Simulation::send_report(SimNode& n) {
    SimCall c;
    c.id = next_call_++;
    c.node = n.id;
    c.session = n.session;
    c.sent_real = real_;
    c.sent_keeper = keeper_now(n);
    c.reported = n.current;
    // The keeper hides a crashed primary from the monitor while it restarts it within
    // its budget (keeper_loop.cpp make_report).
    c.pg_running = n.pg_running || (is_writable(n.current) && n.current == n.goal && n.has_data &&
                                    n.restart_attempts < kRestartBudget);
    c.timeline = n.timeline;
    c.lsn = n.wal.size() + 1;
    // Like pg_stat_replication on the primary: the standbys that stream from it now,
    // with what they flushed. The monitor trusts only this for catchingup -> secondary.
    if (acting_primary(n))
        for (const auto& s : nodes_)
            if (streams_from(s, n)) c.streaming.push_back(StreamingStandby{s.id, s.wal.size() + 1});
    milliseconds request_delay{0};
    if (options_.delays && rand(100) < 20) {
        request_delay = milliseconds(options_.stale_requests && rand(100) < 10
                                         ? rand(static_cast<int>(kStaleRequestBound.count()))
                                         : rand(1500));
        c.answer_delay = milliseconds(rand(800));
    }
    c.deliver_real = real_ + request_delay;
    // The call ends at the keeper's timeout, and no later than its fencing deadline
    // while its primary runs (keeper_loop.cpp bound_monitor_call).
    milliseconds bound = kMonitorCallTimeout;
    if (n.pg_running && is_writable(n.current) && n.last_monitor_contact) {
        TimePoint latest = *n.last_monitor_contact;
        if (n.last_standby_contact && *n.last_standby_contact > latest) latest = *n.last_standby_contact;
        const auto left = std::chrono::duration_cast<milliseconds>(
            latest + settings_.timeouts.network_partition_timeout - c.sent_keeper);
        bound = std::max(std::min(bound, std::max(left, milliseconds(0)) + milliseconds(20)), milliseconds(100));
    }
    c.deadline_real = c.answer_real = real_ + bound;  // answer_real: the deadline until answered
    n.call = c;
    if (request_delay.count() == 0) serve(*n.call);
    else {
        in_flight_.push_back(c);
        log("network: node_" + std::to_string(n.id) + "'s report " + std::string(to_string(c.reported)) +
            " is delayed " + std::to_string(request_delay.count()) + "ms");
    }
}

void Simulation::deliver_requests() {
    std::vector<SimCall> later;
    // In arrival order; requests of one keeper can overtake each other.
    std::stable_sort(in_flight_.begin(), in_flight_.end(),
                     [](const SimCall& a, const SimCall& b) { return a.deliver_real < b.deliver_real; });
    for (auto& c : in_flight_) {
        if (c.deliver_real > real_) {
            later.push_back(c);
            continue;
        }
        const SimNode& n = node(c.node);
        if (monitor_down_ || real_ - c.sent_real > kStaleRequestBound) continue;  // lost
        if (!options_.stale_requests && real_ > c.deadline_real) continue;     // never served once given up
        if (n.isolated || n.monitor_cut) {
            later.push_back(c);  // retransmitted once the path heals
            continue;
        }
        serve(c);
    }
    in_flight_ = std::move(later);
}

// The monitor serves one node_active: store the report, decide, answer.
void Simulation::serve(SimCall& c) {
    if (monitor_down_) return;
    SimNode& n = node(c.node);
    NodeSnapshot& r = row(c.node);
    const bool stale = !n.call || n.call->id != c.id;
    auto stored = std::find_if(report_session_.begin(), report_session_.end(),
                               [&](const auto& e) { return e.first == c.node; });
    if (stored == report_session_.end()) stored = report_session_.insert(report_session_.end(), {c.node, c.session});
    if (options_.refuse_stale_sessions && c.session < stored->second) {
        log("network: the monitor refuses node_" + std::to_string(c.node) + "'s stale report " +
            std::string(to_string(c.reported)) + " (an older session than its last report's)");
        return;
    }
    stored->second = c.session;
    if (stale)
        log("network: the monitor serves node_" + std::to_string(c.node) + "'s report " +
            std::string(to_string(c.reported)) + (c.pg_running ? "" : " (Postgres down)") + " sent " +
            std::to_string(std::chrono::duration_cast<milliseconds>(real_ - c.sent_real).count()) +
            "ms ago; its keeper no longer waits for the answer");
    r.reported_state = c.reported;
    r.pg_is_running = c.pg_running;
    r.timeline = c.timeline;
    r.lsn = c.lsn;
    r.streaming_standbys = c.streaming;
    r.last_report = clock_.now;
    apply_decision(decide(monitor_, settings_, clock_), "node_active");
    if (stale) return;
    SimCall& mine = *n.call;
    mine.answered = true;
    if (mine.answer_real >= real_ + c.answer_delay) mine.answer_real = real_ + c.answer_delay;
    else mine.answered = false;  // the answer would come after the keeper gave up
    mine.goal = r.goal_state;
    mine.sync_names = synchronous_standby_names(monitor_, settings_);
    mine.primary = find_primary(monitor_);
    mine.upstream = choose_fast_forward_source(monitor_, c.node);
}

void Simulation::keeper_step(SimNode& n) {
    if (!n.machine_up) return;
    if (n.pg_running) n.restart_attempts = 0;
    track_standby_replies(n);
    if (!n.call && reaches_monitor(n)) send_report(n);
    bool contact = false;
    if (n.call) {
        SimCall& c = *n.call;
        if (c.answered && c.answer_real <= real_ && reaches_monitor(n)) {
            contact = true;
            n.goal = c.goal;
            n.sync_names_from_monitor = c.sync_names;
            n.assigned_primary = c.primary;
            n.assigned_upstream = c.upstream;
            // Contact counts from when the request left (keeper_loop.cpp contact_monitor).
            if (!n.last_monitor_contact || c.sent_keeper > *n.last_monitor_contact) n.last_monitor_contact = c.sent_keeper;
            n.call.reset();
        } else if (real_ >= c.answer_real) {
            n.call.reset();  // timed out: no contact; the link cancels, disconnects, reconnects
            ++n.session;
        } else {
            check_fencing(n);  // blocked in the call, which ends at the fencing deadline
            return;
        }
    }
    // The keeper restarts a crashed Postgres only after the monitor confirmed the goal
    // (supervise() runs after a successful call with goal == current), within its budget.
    if (contact && !n.pg_running && n.has_data && n.current == n.goal && needs_running(n.current)) {
        if (n.restart_attempts < kRestartBudget || !is_writable(n.current)) {
            ++n.restart_attempts;
            if (rand(4) != 0) {
                n.pg_running = true;
                log("keeper node_" + std::to_string(n.id) + ": restarted Postgres");
            }
        } else if (rand(10) == 0) {
            n.restart_attempts = 0;  // a fresh budget after postgres_restart_failure_timeout
        }
    }
    check_fencing(n);
    // Like the keeper's supervise(): a settled standby whose walreceiver points at a node
    // that is not the primary (left over from an earlier primary, or from before a
    // maintenance) is re-pointed at the primary; one whose WAL diverged is rebuilt.
    if (contact && n.current == n.goal && (n.current == S::Catchingup || n.current == S::Secondary) &&
        n.pg_running && n.in_recovery) {
        const auto primary_id = n.assigned_primary;
        if (primary_id && *primary_id != n.id && n.upstream != *primary_id) {
            SimNode& p = node(*primary_id);
            if (p.pg_running && reach(n, p)) {
                const bool diverged = !is_prefix(n.wal, p.wal);
                if (diverged) copy_wal(n, p);
                n.upstream = p.id;
                log("keeper node_" + std::to_string(n.id) + ": re-points its walreceiver at the primary node_" +
                    std::to_string(p.id) + (diverged ? " (diverged: rebuilt from a base backup)" : ""));
            }
        }
    }
    // Transitions only on the goal the monitor confirmed in this round: a keeper
    // cut off from the monitor must not resume a fenced primary on a stale goal.
    if (!contact || n.current == n.goal) return;
    const auto path = keeper_path(n.current, n.goal);
    if (!path) {
        fail("keeper node_" + std::to_string(n.id) + " has no path from " + std::string(to_string(n.current)) + " to " +
             std::string(to_string(n.goal)));
        return;
    }
    const KeeperTransition edge = path->front();
    if (run_action(n, edge)) {
        log("keeper node_" + std::to_string(n.id) + ": " + std::string(to_string(edge.from)) + " -> " +
            std::string(to_string(edge.to)) + " (" + std::string(to_string(edge.action)) + ")" +
            (is_writable(edge.to) ? " synchronous_standby_names='" + n.sync_names_from_monitor + "'" : ""));
        n.current = edge.to;
        if (edge.to == S::Dropped) n.dropped = true;
    }
}

bool Simulation::run_action(SimNode& n, const KeeperTransition& edge) {
    const auto primary_id = n.assigned_primary;  // the primary the monitor named in its answer
    SimNode* primary = primary_id && *primary_id != n.id ? &node(*primary_id) : nullptr;
    const auto start_standby_of = [&](SimNode& up) {
        n.in_recovery = true;
        n.pg_running = true;
        n.upstream = up.id;
        n.sync_n = 0;
        n.sync_list.clear();
    };
    const auto set_sync = [&](const std::string& names) {
        auto parsed = parse_names(names);
        n.sync_n = parsed.first;
        n.sync_list = parsed.second;
    };
    // Like the keeper's ensure_running(): primary-side actions start Postgres first.
    const auto ensure_running_primary = [&] {
        if (!n.pg_running && n.has_data && !n.in_recovery) n.pg_running = true;
        return n.pg_running && !n.in_recovery;
    };
    const auto check_holds_everything = [&](const std::string& how) {
        for (const auto& [pos, commit] : acked_)
            if (n.wal.size() <= pos || n.wal[pos] != commit) {
                fail("ACKNOWLEDGED COMMIT LOST: node_" + std::to_string(n.id) + " became primary (" + how +
                     ") without commit " + std::to_string(commit) + " at position " + std::to_string(pos));
                return;
            }
    };
    switch (edge.action) {
        case KeeperAction::None:
            return true;
        case KeeperAction::InitPrimary:
            if (n.has_data && n.in_recovery) {
                ++n.timeline;
                ++promotions_;
            }
            n.has_data = true;
            n.in_recovery = false;
            n.pg_running = true;
            n.upstream.reset();
            set_sync("");
            check_holds_everything("init_primary");
            return true;
        case KeeperAction::InitStandby:
        case KeeperAction::RewindOrReinit:
            if (!primary || !primary->pg_running || !reach(n, *primary)) return false;
            copy_wal(n, *primary);
            start_standby_of(*primary);
            return true;
        case KeeperAction::FollowPrimary:
            if (!primary || !primary->pg_running || !reach(n, *primary) || !n.has_data) return false;
            if (!n.in_recovery) return false;  // a former primary must be rewound
            // A keeper that finds its WAL diverged from the new primary's rewinds.
            if (!is_prefix(n.wal, primary->wal)) copy_wal(n, *primary);
            start_standby_of(*primary);
            return true;
        case KeeperAction::StopReplication:
            if (!n.has_data) return false;
            n.upstream.reset();
            n.pg_running = true;
            return true;
        case KeeperAction::FastForward: {
            const auto source_id = n.assigned_upstream;
            if (!source_id) return false;
            SimNode& source = node(*source_id);
            if (!source.pg_running || !reach(n, source) || !is_prefix(n.wal, source.wal)) return false;
            copy_wal(n, source);
            n.pg_running = true;
            return true;
        }
        case KeeperAction::Promote:
            if (!n.has_data) return false;
            n.pg_running = true;
            if (n.in_recovery) {
                n.in_recovery = false;
                ++n.timeline;
                ++promotions_;
                check_holds_everything("promote");
            }
            n.upstream.reset();
            set_sync("");
            return true;
        case KeeperAction::DisableSyncRep:
            if (!ensure_running_primary()) return false;
            set_sync("");
            return true;
        case KeeperAction::ApplySettings:
            // Contract: the keeper never applies an empty list on the way to a
            // sync state; the monitor takes primary/apply_settings as proof of
            // synchronous replication.
            if (!ensure_running_primary() || n.sync_names_from_monitor.empty()) return false;
            set_sync(n.sync_names_from_monitor);
            return true;
        case KeeperAction::EnableSyncRep: {
            if (!ensure_running_primary() || n.sync_names_from_monitor.empty()) return false;
            set_sync(n.sync_names_from_monitor);
            int caught_up = 0;
            for (NodeId id : n.sync_list)
                if (streams_from(node(id), n) && node(id).wal.size() == n.wal.size()) ++caught_up;
            return caught_up >= n.sync_n;
        }
        case KeeperAction::StopPostgres:
            if (n.pg_running && !n.in_recovery)
                for (auto& s : nodes_)  // fast shutdown: connected walsenders send everything first
                    if (s.upstream == n.id && s.pg_running && reach(s, n) && is_prefix(s.wal, n.wal)) copy_wal(s, n);
            n.pg_running = false;
            return true;
        case KeeperAction::Fence:
            n.pg_running = false;
            return true;
        case KeeperAction::ResumeAsPrimary:
            if (!n.has_data || n.in_recovery) return false;
            n.pg_running = true;
            set_sync(n.sync_names_from_monitor);
            check_holds_everything("resume");
            return true;
        case KeeperAction::ReleaseForMaintenance:
            n.pg_running = false;  // the DBA stops it
            n.upstream.reset();
            return true;
        case KeeperAction::DropNode:
            n.pg_running = false;
            return true;
    }
    return false;
}

void Simulation::monitor_step() {
    if (monitor_down_) return;
    for (auto& r : monitor_.nodes) {
        const SimNode& n = node(r.id);
        const bool answers = n.machine_up && !n.isolated && n.pg_running;
        r.health = answers ? Health::Good : Health::Bad;
        r.last_health_check = clock_.now;
    }
    // The monitor decides after each report; twice here stands for the reports
    // that NOTIFY wake-ups bring within one step.
    for (int round = 0; round < 2; ++round) apply_decision(decide(monitor_, settings_, clock_), "decide");
}

void Simulation::apply_decision(const Decision& decision, const std::string& origin) {
    for (const auto& a : decision.assignments) {
        NodeSnapshot& r = row(a.node_id);
        // Promotion choices must respect the priorities and the quorum.
        if ((a.goal == S::PreparePromotion || a.goal == S::FastForward) && r.goal_state != S::FastForward) {
            if (r.candidate_priority <= 0) fail("node_" + std::to_string(r.id) + " with candidate_priority 0 was chosen");
            if (!r.replication_quorum && origin == "decide")
                for (const auto& other : monitor_.nodes)
                    if (other.id != r.id && other.replication_quorum && other.candidate_priority > 0 &&
                        other.reported_state == S::ReportLsn && other.goal_state == S::ReportLsn &&
                        !node_is_unhealthy(other, settings_, clock_))
                        fail("non-quorum node_" + std::to_string(r.id) + " chosen while quorum node_" +
                             std::to_string(other.id) + " could be");
        }
        if (a.goal == S::Demoted && is_writable(r.goal_state)) ++failovers_;
        assigned_pairs_.insert({r.reported_state, a.goal});
        log(origin + ": node_" + std::to_string(a.node_id) + " " + std::string(to_string(r.reported_state)) + " -> goal " +
            std::string(to_string(a.goal)) + ": " + a.reason);
        r.goal_state = a.goal;
        r.goal_assigned_at = clock_.now;
    }
    if (!decision.waiting_reason.empty() && origin == "decide" && rand(8) == 0)
        log("waiting: " + decision.waiting_reason);
    // A later rule that wanted another goal for a node an earlier rule of the same pass had moved: counted, so
    // that the tests see rule precedence at work instead of a silent drop (docs/fsm.md, "Rules").
    for (const auto& shadowed : decision.shadowed) {
        for (const auto& applied : decision.assignments)
            if (applied.node_id == shadowed.node_id && applied.goal != shadowed.goal) {
                ++overridden_;
                overrides_.insert(applied.rule + " over " + shadowed.rule);
            }
    }
}

bool Simulation::check_invariants() {
    int writable_goals = 0;
    for (const auto& r : monitor_.nodes)
        if (is_writable(r.goal_state)) ++writable_goals;
    if (writable_goals > 1) fail(std::to_string(writable_goals) + " nodes assigned a writable goal");
    int acknowledging = 0;
    for (const auto& n : nodes_) {
        if (can_acknowledge(n)) ++acknowledging;
        if (!acting_primary(n)) continue;
        // Every node running as a primary holds every acknowledged commit.
        for (const auto& [pos, commit] : acked_)
            if (n.wal.size() <= pos || n.wal[pos] != commit) {
                fail("ACKNOWLEDGED COMMIT LOST: node_" + std::to_string(n.id) + " runs as a primary without commit " +
                     std::to_string(commit));
                break;
            }
    }
    if (acknowledging > 1) fail(std::to_string(acknowledging) + " nodes can acknowledge writes at once (split brain)");
    return failure_.empty();
}

}  // namespace autofailover::sim
