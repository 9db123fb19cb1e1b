#include "keeper/keeper_loop.h"

#include "support/atomic_file.h"
#include "support/child_process.h"
#include "keeper/hooks.h"
#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "keeper/replication_slots.h"
#include "keeper/standby_setup.h"
#include "keeper/transition_actions.h"
#include "libautofailover/keeper_transitions.h"
#include "libautofailover/partition.h"
#include "libautofailover/supervision.h"
#include "keeper/postgres_files.h"
#include "libautofailover/settings.h"  // replication_names.h needs FormationSettings
#include "libautofailover/replication_names.h"
#include "libautofailover/input_validation.h"
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <thread>

namespace autofailover::keeper {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// time_to_fencing_deadline() of a node that never fences (not a primary, no standby).
constexpr milliseconds kNeverFences{std::numeric_limits<int>::max()};

std::string ms(milliseconds d) { return std::to_string(d.count()) + "ms"; }

}  // namespace

MonitorLogin monitor_login(const KeeperConfig& config) {
    return MonitorLogin{config.monitor_uri, config.monitor_user, config.monitor_passfile};
}

std::string config_path(const std::string& dir) { return dir + "/keeper.json"; }
std::string state_path(const std::string& dir) { return dir + "/state.json"; }
std::string pid_path(const std::string& dir) { return dir + "/keeper.pid"; }

KeeperConfig load_config(const std::string& dir) {
    auto text = support::read_file_if_exists(config_path(dir));
    if (!text)
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "no keeper.json in " + dir + ": run `autoctl create postgres` first");
    try {
        return config_from_json(*text);
    } catch (const std::runtime_error& e) {
        throw KeeperError(KeeperError::Kind::BadArguments, config_path(dir) + ": " + e.what());
    }
}

KeeperState load_state(const std::string& dir) {
    auto text = support::read_file_if_exists(state_path(dir));
    if (!text) return KeeperState{};
    return state_from_json(*text);
}

void save_config(const std::string& dir, const KeeperConfig& config) {
    support::write_file_atomically(config_path(dir), config_to_json(config));
}

void save_state(const std::string& dir, const KeeperState& state) {
    support::write_file_atomically(state_path(dir), state_to_json(state));
}

KeeperLoop::KeeperLoop(std::string state_dir, std::function<bool()> stop_requested)
    : state_dir_(std::move(state_dir)),
      stop_requested_(std::move(stop_requested)),
      config_(load_config(state_dir_)),
      state_(load_state(state_dir_)),
      pg_(config_),
      monitor_(monitor_login(config_), config_.timeouts.monitor_call_timeout) {
    if (state_.node_id == 0)
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "state.json in " + state_dir_ + " holds no registration: run `autoctl create postgres`");
    // A keeper that died between a pg_rewind (or base backup) and putting the node's own
    // pg_hba.conf lines back finishes that now.
    if (restore_local_hba(config_.pgdata))
        log_info("node={} state={} put this node's own pg_hba.conf lines back after an interrupted rewind", name(),
                 to_string(state_.current_state));
    monitor_.listen_for_state_changes();
}

std::string KeeperLoop::name() const { return config_.name.empty() ? "node_" + std::to_string(state_.node_id) : config_.name; }

// Every step and heartbeat ends in persist(): publishing there keeps the HTTP
// snapshot as fresh as state.json, also during long transitions.
void KeeperLoop::persist() {
    save_state(state_dir_, state_);
    if (observer_) observer_(node_observation());
}

NodeObservation KeeperLoop::node_observation() const {
    const Observation& obs = last_observation_;
    NodeObservation o;
    o.published = true;
    o.node = name();
    o.formation = config_.formation;
    o.reported = state_.current_state;
    o.goal = state_.goal_state;
    o.pg_running = obs.running;
    o.pg_accepting = obs.accepting;
    o.in_recovery = obs.in_recovery;
    o.wal_receiver_streaming = obs.wal_receiver_streaming;
    o.lsn = obs.lsn;
    o.fenced = state_.fenced_at.has_value();
    o.last_monitor_contact = state_.last_monitor_contact;
    o.observed_at = Clock::now();
    if (obs.in_recovery)
        for (const auto& other : others_)
            if (other.is_primary && other.lsn)
                o.lag_bytes = *other.lsn > obs.lsn ? static_cast<std::int64_t>(*other.lsn - obs.lsn) : 0;
    if (obs.in_recovery && obs.accepting) {
        std::optional<std::chrono::milliseconds> since_caught_up;
        if (replay_caught_up_at_)
            since_caught_up = std::chrono::duration_cast<std::chrono::milliseconds>(o.observed_at - *replay_caught_up_at_);
        o.replay_lag = replay_time_lag(obs.replay_caught_up, obs.last_replayed_commit_age, since_caught_up);
    }
    if (is_writable(state_.current_state)) {
        o.primary_name = name();
        o.primary_host = config_.hostname;
        o.primary_port = config_.port;
    } else {
        for (const auto& other : others_)
            if (other.is_primary) {
                o.primary_name = other.name;
                o.primary_host = other.host;
                o.primary_port = other.port;
            }
    }
    const auto left = time_to_fencing_deadline();
    if (left != kNeverFences) o.lease_deadline = o.observed_at + std::chrono::duration_cast<Clock::duration>(left);
    return o;
}

void KeeperLoop::reload_config() {
    try {
        auto fresh = load_config(state_dir_);
        config_ = fresh;
        pg_ = LocalPostgres(config_);
        monitor_.disconnect();
        monitor_.set_login(monitor_login(config_));
        monitor_.set_call_timeout(config_.timeouts.monitor_call_timeout);
        log_info("node={} state={} reloaded keeper.json (poll_period={})", name(), to_string(state_.current_state),
                 ms(config_.timeouts.poll_period));
        // Settings of autofailover.conf that a reload applies (wal_keep_size) take effect now.
        if (pg_.data_dir_exists() && support::read_file_if_exists(config_.pgdata + "/autofailover.conf") !=
                                         autofailover_conf_text(config_)) {
            write_autofailover_conf(config_);
            if (pg_.postmaster_alive()) pg_.reload();
            log_info("node={} state={} autofailover.conf rewritten from keeper.json", name(),
                     to_string(state_.current_state));
        }
    } catch (const std::exception& e) {
        log_error("node={} state={} keeper.json not reloaded, keeping the old settings: {}", name(),
                  to_string(state_.current_state), e.what());
    }
}

Observation KeeperLoop::observe_and_track() {
    Observation obs = pg_.observe();
    last_observation_ = obs;
    if (!obs.in_recovery) replay_caught_up_at_.reset();
    else if (obs.replay_caught_up) replay_caught_up_at_ = Clock::now();
    // Contact is when the standby last replied, not when we looked: a walsender stays
    // 'streaming' for a while after its standby stopped replicating (it froze for an
    // election), and counting that as fresh contact would delay fencing past the
    // moment the monitor promotes another node.
    const auto now = Clock::now();
    for (const auto& s : obs.standbys) {
        if (s.state != "streaming" || !s.reply_age) continue;
        const TimePoint replied = now - std::chrono::duration_cast<Clock::duration>(*s.reply_age);
        if (!state_.last_standby_contact || replied > *state_.last_standby_contact) state_.last_standby_contact = replied;
    }
    if (obs.running) {
        down_since_.reset();
        restart_attempts_ = 0;
    } else if (!down_since_ && postgres_must_run(state_.current_state) && state_.current_state == state_.goal_state) {
        down_since_ = SteadyClock::now();
    }
    return obs;
}

NodeReport KeeperLoop::make_report(const Observation& obs) {
    NodeReport r;
    r.reported_state = state_.current_state;
    r.timeline = obs.timeline;
    r.lsn = obs.lsn;
    r.pg_is_running = obs.running;
    // What only the primary can vouch for: which standbys stream from it, and how far.
    if (obs.accepting && !obs.in_recovery)
        for (const auto& s : obs.standbys)
            if (s.state == "streaming")
                if (auto id = node_id_of_standby_name(s.application_name))
                    r.streaming_standbys.push_back(StreamingStandbyReport{*id, s.flush_lsn});
    // A primary whose Postgres just crashed is restarted first; the monitor
    // hears about it only once the restart budget is spent.
    r.pg_is_running = report_postgres_running(supervision_view(obs));
    return r;
}

SupervisionView KeeperLoop::supervision_view(const Observation& obs) const {
    SupervisionView v;
    v.state = state_.current_state;
    v.running = obs.running;
    v.data_dir_exists = obs.data_dir_exists;
    v.standby_signal = obs.standby_signal;
    v.restart_attempts = restart_attempts_;
    if (down_since_) v.down_for = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - *down_since_);
    v.budget.max_retries = config_.timeouts.postgres_restart_max_retries;
    v.budget.failure_timeout = config_.timeouts.postgres_restart_failure_timeout;
    return v;
}

std::chrono::milliseconds KeeperLoop::time_to_fencing_deadline() const {
    const bool has_standbys = others_known_ ? !others_.empty() : state_.current_state != NodeState::Single;
    if (!is_writable(state_.current_state) || !state_.last_monitor_contact || !has_standbys) return kNeverFences;
    TimePoint latest = *state_.last_monitor_contact;
    if (state_.last_standby_contact && *state_.last_standby_contact > latest) latest = *state_.last_standby_contact;
    auto left = std::chrono::duration_cast<milliseconds>(latest + state_.network_partition_timeout - Clock::now());
    return std::max(left, milliseconds(0));
}

// A monitor behind a dead network must not keep a running primary from fencing on
// time, so its calls end at the fencing deadline (at least 100 ms). With Postgres down
// there is nothing to fence: the full timeout, else a restarted keeper whose last
// contact is old makes 100 ms calls that, on a loaded machine, never reach the monitor
// (seen in the P3/M2 failure tests: an old primary stuck for 90 s).
void KeeperLoop::bound_monitor_call(const Observation& obs) {
    const auto bounded = obs.running ? std::min(config_.timeouts.monitor_call_timeout,
                                                time_to_fencing_deadline() + milliseconds(20))
                                     : config_.timeouts.monitor_call_timeout;
    monitor_.set_call_timeout(std::max(bounded, milliseconds(100)));
}

bool KeeperLoop::contact_monitor(const Observation& obs) {
    bound_monitor_call(obs);
    // Contact counts from when the request left: the monitor's clock of this
    // node's silence starts no earlier, so the fencing deadline is never later.
    const TimePoint sent = Clock::now();
    try {
        auto answer = monitor_.node_active(config_.formation, state_.node_id, make_report(obs));
        if (!answer.monitor_leads) {
            note_monitor_without_lease();
            return false;
        }
        assignment_ = std::move(answer);
        state_.last_monitor_contact = sent;
        state_.goal_state = assignment_.goal;
        if (assignment_.network_partition_timeout) state_.network_partition_timeout = *assignment_.network_partition_timeout;
        if (assignment_.goal != NodeState::Dropped) {
            state_.candidate_priority = assignment_.candidate_priority;
            state_.replication_quorum = assignment_.replication_quorum;
        }
        if (assignment_.goal != NodeState::Dropped) try {
            others_ = monitor_.get_other_nodes(state_.node_id);
            others_known_ = true;
        } catch (const MonitorRefused& e) {
            log_warn("node={} state={} get_other_nodes refused: {}", name(), to_string(state_.current_state), e.what());
        }
        if (assignment_.goal != NodeState::Dropped && assignment_.client_access_version != state_.formation_clients.version)
            refresh_formation_clients(assignment_.client_access_version);
        if (monitor_was_unreachable_ || monitor_without_lease_)
            log_info("node={} state={} monitor reachable again", name(), to_string(state_.current_state));
        monitor_was_unreachable_ = false;
        monitor_without_lease_ = false;
        contacted_since_start_ = true;
        last_heartbeat_ = SteadyClock::now();
        warn_on_version_mismatch();
        return true;
    } catch (const MonitorUnreachable& e) {
        if (!monitor_was_unreachable_)
            log_warn("node={} state={} monitor unreachable: {}", name(), to_string(state_.current_state), e.what());
        monitor_was_unreachable_ = true;
        return false;
    } catch (const MonitorRefused& e) {
        // A refusal is no contact: a monitor that says "not registered", "not your node" or
        // "read-only" has not confirmed this primary, and may be promoting another node.
        // Counting it would keep a removed or impersonated primary from fencing (two primaries).
        log_error("node={} state={} node_active refused: {}", name(), to_string(state_.current_state), e.what());
        warn_on_version_mismatch();
        return false;
    }
}

// The next supervise() writes the merged block (ensure_replication_access). A failed fetch keeps the old
// list and is retried at the next contact: the version still differs.
void KeeperLoop::refresh_formation_clients(std::int64_t monitor_version) {
    try {
        FormationClients fetched = monitor_.formation_client_access(config_.formation);
        std::vector<std::string> refused;
        for (const auto& n : fetched.networks)
            if (!client_network_problem(n).empty()) refused.push_back(printable(n));
        if (!client_database_problem(fetched.client_database).empty() ||
            !client_role_problem(fetched.client_role).empty())
            refused.push_back("client_database/client_role");
        if (!refused.empty())
            log_error("node={} state={} formation client access version {} holds refused values ({}): no pg_hba.conf "
                      "line for them",
                      name(), to_string(state_.current_state), fetched.version, fmt::format("{}", fmt::join(refused, ", ")));
        log_info("node={} state={} formation client access version {}: {} network(s) for role {} database {}", name(),
                 to_string(state_.current_state), fetched.version, fetched.networks.size(),
                 printable(fetched.client_role), printable(fetched.client_database));
        state_.formation_clients = std::move(fetched);
        formation_clients_failed_version_ = -1;
        persist();
    } catch (const std::exception& e) {
        if (formation_clients_failed_version_ != monitor_version)
            log_warn("node={} state={} formation client access version {} not fetched (retried next period): {}",
                     name(), to_string(state_.current_state), monitor_version, e.what());
        formation_clients_failed_version_ = monitor_version;
    }
}

// A monitor whose library and installed SQL differ refuses every call; say why once.
void KeeperLoop::warn_on_version_mismatch() {
    if (version_checked_) return;
    try {
        const std::string mismatch = monitor_.version_mismatch();
        version_checked_ = true;
        if (!mismatch.empty()) log_warn("node={} state={} {}", name(), to_string(state_.current_state), mismatch);
    } catch (const std::exception&) {
        // Unreachable now: checked at the next answer.
    }
}

// A replicated monitor cut from etcd records reports but decides nothing, and a new leader may be failing this
// node over: its answers keep no primary writable (docs/monitor-ha.md, M4). The link tries the next host.
void KeeperLoop::note_monitor_without_lease() {
    if (!monitor_without_lease_)
        log_warn("node={} state={} the monitor answered without a valid leader lease: not counted as contact, "
                 "looking for the leading monitor",
                 name(), to_string(state_.current_state));
    monitor_without_lease_ = true;
}

bool KeeperLoop::check_partition(const Observation& obs) {
    if (!is_writable(state_.current_state) || !obs.running) return false;
    PartitionView view;
    view.now = Clock::now();
    view.last_monitor_contact = state_.last_monitor_contact;
    view.last_standby_contact = state_.last_standby_contact;
    view.has_standbys = others_known_ ? !others_.empty() : state_.current_state != NodeState::Single;
    if (!primary_is_partitioned(view, state_.network_partition_timeout)) return false;

    auto since = [&](const std::optional<TimePoint>& t) {
        return t ? ms(std::chrono::duration_cast<milliseconds>(view.now - *t)) : std::string("never");
    };
    const NodeState from = state_.current_state;
    try {
        pg_.stop("immediate");
    } catch (const std::exception& e) {
        log_error("node={} state={} fencing failed, retrying: {}", name(), to_string(from), e.what());
        return false;
    }
    state_.current_state = NodeState::DemoteTimeout;
    state_.fenced_at = Clock::now();
    // Postgres is down now: what persist() publishes (the HTTP endpoint) must not
    // show the observation taken before the stop.
    last_observation_.running = last_observation_.accepting = false;
    ++fence_generation_;
    persist();
    log_warn("node={} state={}→{} reason=network partition: no monitor contact for {}, no standby for {} "
             "(network_partition_timeout={}); Postgres stopped (immediate) so it takes no writes",
             name(), to_string(from), to_string(state_.current_state), since(state_.last_monitor_contact),
             since(state_.last_standby_contact), ms(state_.network_partition_timeout));
    return true;
}

// Only while the monitor's last word is that this node stays a primary: a goal
// such as draining lets the lease run out. The lease lasts exactly as long as the
// keeper would wait before fencing; Postgres enforces it when the keeper cannot
// (frozen host, stuck keeper).
void KeeperLoop::renew_write_lease(const Observation& obs) {
    const NodeState s = state_.current_state;
    if (!obs.accepting || obs.in_recovery || !is_writable(s) || !is_writable(state_.goal_state)) return;
    const auto left = time_to_fencing_deadline();
    write_lease_.renew(pg_, left == kNeverFences ? std::nullopt : std::optional<milliseconds>(left), name());
}

void KeeperLoop::heartbeat() {
    if (SteadyClock::now() - last_heartbeat_ < config_.timeouts.poll_period) return;
    last_heartbeat_ = SteadyClock::now();
    try {
        Observation obs = observe_and_track();
        NodeReport report = make_report(obs);
        try {
            bound_monitor_call(obs);
            const TimePoint sent = Clock::now();
            auto a = monitor_.node_active(config_.formation, state_.node_id, report);
            if (!a.monitor_leads) {
                note_monitor_without_lease();  // no contact (see contact_monitor)
                obs = observe_and_track();     // fresher standby replies (see step_unguarded)
                check_partition(obs);
            } else {
                state_.last_monitor_contact = sent;
                if (a.goal != state_.goal_state)
                    log_info("node={} state={} new goal {} arrived during the current transition; it comes next",
                             name(), to_string(state_.current_state), to_string(a.goal));
                state_.goal_state = a.goal;
            }
        } catch (const MonitorUnreachable&) {
            obs = observe_and_track();
            check_partition(obs);
        } catch (const MonitorRefused& e) {
            // No contact either (see contact_monitor): the fencing clock keeps running.
            log_debug("node={} heartbeat refused: {}", name(), e.what());
            check_partition(obs);
        }
        renew_write_lease(obs);
        persist();
        log_debug("node={} heartbeat took {}", name(),
                  ms(std::chrono::duration_cast<milliseconds>(SteadyClock::now() - last_heartbeat_)));
    } catch (const std::exception& e) {
        log_debug("node={} heartbeat failed: {}", name(), e.what());
    }
}

bool KeeperLoop::supervise(const Observation& obs) {
    const NodeState s = state_.current_state;
    ActionContext ctx{config_, state_, pg_, assignment_, others_, [this] { heartbeat(); }, stop_requested_,
                      [this] { persist(); }};
    if (obs.data_dir_exists && s != NodeState::Maintenance) ensure_replication_access(ctx, true);

    SupervisionView view = supervision_view(obs);
    if (postgres_must_run(s) && !obs.running && obs.data_dir_exists)
        view.postmaster_unreaped = pg_.postmaster_unreaped();
    const SupervisionPlan plan = plan_supervision(view);
    switch (plan.action) {
        case SupervisionAction::Nothing:
            break;
        case SupervisionAction::StopPostgres:
            log_warn("node={} state={} {}; stopping it", name(), to_string(s), plan.reason);
            pg_.stop("fast");
            return false;
        case SupervisionAction::ReportDown:
            // pg_is_running=false goes to the monitor (make_report). A fresh budget starts after another
            // postgres_restart_failure_timeout.
            if (plan.renew_budget) {
                down_since_ = SteadyClock::now();
                restart_attempts_ = 0;
            }
            return false;
        case SupervisionAction::WaitForReap:
            log_debug("node={} {}", name(), plan.reason);
            return false;
        case SupervisionAction::RestartPostgres:
            ++restart_attempts_;
            log_warn("node={} state={} {}", name(), to_string(s), plan.reason);
            if (plan.standby_setup_first) {
                // Never let a standby's data directory come up as a second primary.
                if (!assignment_.primary_host.empty())
                    write_standby_setup(ctx, assignment_.primary_host, assignment_.primary_port, true);
                else
                    write_standby_signal(config_.pgdata);
            }
            // Restarting can take seconds (crash recovery): keep reporting meanwhile, and
            // give up at once if the monitor moves the goal away (it may be promoting
            // another node), so this node never comes up as a second primary.
            pg_.start([this] { heartbeat(); }, [this, s] { return state_.goal_state != s; });
            log_info("node={} state={} Postgres restarted", name(), to_string(s));
            return true;
    }
    if (obs.accepting && obs.in_recovery && (s == NodeState::Secondary || s == NodeState::Catchingup) &&
        rebuild_if_unfollowable(ctx, obs))
        return false;
    if (obs.accepting && !obs.in_recovery && is_writable(s)) maintain_replication_slots(ctx);
    if (obs.accepting && obs.in_recovery && (s == NodeState::Secondary || s == NodeState::Catchingup))
        drop_standby_slots(ctx);
    if (obs.accepting && obs.in_recovery && (s == NodeState::Secondary || s == NodeState::Catchingup) &&
        ensure_following_primary(ctx))
        log_warn("node={} state={} primary_conninfo did not point at the primary {}:{}; re-pointed it", name(),
                 to_string(s), assignment_.primary_host, assignment_.primary_port);
    return false;
}

// A standby that was away longer than its slot may hold WAL for (max_slot_wal_keep_size)
// retries "requested WAL segment ... has already been removed" for ever: only a fresh
// base backup brings it back. The log is read only while it does not stream, from
// the moment it stopped (its walreceiver retries every wal_retrieve_retry_interval).
bool KeeperLoop::rebuild_if_unfollowable(ActionContext& ctx, const Observation& obs) {
    if (obs.wal_receiver_streaming) {
        standby_log_watch_.reset();
        return false;
    }
    if (!standby_log_watch_) {
        const std::string path = pg_.server_log_path();
        standby_log_watch_.emplace(path, ServerLogWatch::end_of(path));
        return false;
    }
    const auto reason = standby_log_watch_->unfollowable_reason();
    if (!reason) return false;
    standby_log_watch_.reset();
    rebuild_unfollowable_standby(ctx, *reason);
    return true;
}

bool KeeperLoop::advance_towards_goal() {
    const NodeState from = state_.current_state;
    const NodeState goal = state_.goal_state;
    auto path = keeper_path(from, goal);
    if (!path) {
        std::string message = fmt::format("no transition path from {} to {} in the keeper table", to_string(from),
                                          to_string(goal));
        if (message != last_error_) log_error("node={} state={} {}", name(), to_string(from), message);
        last_error_ = message;
        return false;
    }
    if (path->empty()) return false;
    const KeeperTransition edge = path->front();
    if (edge.to == NodeState::PreparePromotion && !config_.hooks.pre_promote.empty() && !pre_promote_allows())
        return false;
    const int generation = fence_generation_;
    ActionContext ctx{config_, state_, pg_, assignment_, others_, [this] { heartbeat(); }, stop_requested_,
                      [this] { persist(); }};
    const auto started = SteadyClock::now();
    run_action(edge.action, ctx);
    if (generation != fence_generation_) return true;  // fenced meanwhile: that transition wins
    state_.current_state = edge.to;
    persist();
    last_error_.clear();
    auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
    log_info("node={} state={}→{} reason={} (action {}, goal {}, {})", name(), to_string(from), to_string(edge.to),
             edge.description, to_string(edge.action), to_string(goal), ms(took));
    return true;
}

// hooks.pre_promote (docs/operations.md): asked before this node tells the monitor it
// is ready to be promoted. Only a standby runs it (the edge to prepare_promotion), so
// it never delays fencing; it keeps reporting meanwhile and is killed at the hooks'
// timeout_ms (a veto). A veto leaves the edge untaken and tells the monitor, which
// elects another node or aborts the switchover.
bool KeeperLoop::pre_promote_allows() {
    const std::string state = std::string(to_string(state_.current_state));
    HookEvent event = pre_promote_event(config_.hooks, node_observation());
    support::ChildOptions options;
    options.timeout = config_.hooks.timeout;
    options.extra_env = event.env;
    options.tick = [this] { heartbeat(); };
    const NodeState goal = state_.goal_state;
    options.cancel = [this, goal] { return stop_requested_() || state_.goal_state != goal; };
    const auto started = SteadyClock::now();
    const support::ChildResult r = support::run_child({event.program}, options);
    const auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
    std::string out = support::tail_of(r.output, 200);
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
    if (r.cancelled) {
        log_info("node={} state={} hook pre_promote stopped after {}: the goal is {} now", name(), state, ms(took),
                 to_string(state_.goal_state));
        return false;
    }
    if (r.ok()) {
        log_info("node={} state={} hook pre_promote allowed the promotion in {}: output: {}", name(), state, ms(took),
                 out);
        return true;
    }
    const std::string why = r.timed_out
                                ? fmt::format("killed at its timeout ({} ms)", config_.hooks.timeout.count())
                                : fmt::format("exited {}", r.exit_code);
    log_warn("node={} state={} hook pre_promote vetoed the promotion: {} after {}: {} output: {}", name(), state, why,
             ms(took), event.program, out);
    try {
        const NodeState next = monitor_.report_promotion_veto(config_.formation, state_.node_id,
                                                               why + (out.empty() ? "" : ": " + out));
        state_.goal_state = next;
        log_info("node={} state={} the monitor knows of the veto; goal now {}", name(), state, to_string(next));
    } catch (const std::exception& e) {
        // The goal stays: the hook is asked again at the next step.
        log_warn("node={} state={} could not report the pre_promote veto to the monitor: {}", name(), state, e.what());
    }
    persist();
    return false;
}

bool KeeperLoop::step_unguarded() {
    Observation obs = observe_and_track();
    const bool contacted = contact_monitor(obs);
    if (!contacted) {
        // A failed or lease-less call may have taken most of the time the standbys' last replies gave (a
        // multi-host URI reconnects through every monitor, TLS and SCRAM each): look at them again, so that
        // the write lease is renewed from replies received meanwhile instead of lapsing (netns row M5).
        obs = observe_and_track();
        check_partition(obs);
        renew_write_lease(obs);
        persist();
        return false;
    }
    renew_write_lease(obs);
    persist();
    if (state_.current_state != state_.goal_state) return advance_towards_goal();
    // A restarted Postgres is reported at once (it may be all the monitor waits for), not a poll period later.
    return supervise(obs);
}

bool KeeperLoop::step() {
    try {
        return step_unguarded();
    } catch (const std::exception& e) {
        std::string message = e.what();
        if (message != last_error_)
            log_error("node={} state={} goal={} {}", name(), to_string(state_.current_state),
                      to_string(state_.goal_state), message);
        else
            log_debug("node={} same error again: {}", name(), message);
        last_error_ = message;
        try {
            persist();
        } catch (const std::exception&) {
        }
        return false;
    }
}

void KeeperLoop::wait_for_next_period() {
    const auto to_deadline = time_to_fencing_deadline();
    // Past the deadline this step already checked (and fenced if it had to): do not spin.
    auto wait = to_deadline.count() == 0 ? std::min(config_.timeouts.poll_period, milliseconds(100))
                                         : std::min(config_.timeouts.poll_period, to_deadline + milliseconds(10));
    // The elected candidate asks again soon: the monitor promotes it at its first call after the
    // old primary's fencing wait (unchanged), which a full poll period would round up by up to a second.
    if (state_.current_state == NodeState::PreparePromotion || state_.current_state == NodeState::StopReplication)
        wait = std::min(wait, config_.timeouts.election_poll_period);
    monitor_.wait_for_group_event(config_.formation, state_.group_id, wait);
}

void KeeperLoop::shutdown() {
    if (!config_.stop_postgres_on_exit || state_.current_state == NodeState::Maintenance) return;
    if (!pg_.postmaster_alive()) return;
    try {
        try {
            pg_.sql("CHECKPOINT");
        } catch (const std::exception&) {
        }
        pg_.stop("fast");
        log_info("node={} state={} Postgres stopped (fast) because the keeper stops", name(),
                 to_string(state_.current_state));
    } catch (const std::exception& e) {
        log_error("node={} state={} could not stop Postgres: {}", name(), to_string(state_.current_state), e.what());
    }
}

}  // namespace autofailover::keeper
