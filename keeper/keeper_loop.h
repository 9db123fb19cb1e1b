// The keeper's main loop: observe the local Postgres, report to the monitor
// (node_active), walk keeper_path() towards the goal one table edge per step,
// supervise Postgres, fence a partitioned primary. All decisions about states
// come from libautofailover; this class only carries them out.
#pragma once

#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"
#include "keeper/local_postgres.h"
#include "keeper/rejoin.h"
#include "keeper/write_lease.h"
#include "keeper/monitor_link.h"
#include "keeper/node_observation.h"
#include "libautofailover/supervision.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

struct ActionContext;  // keeper/action_context.h

// How this node's keeper logs in to the monitor (its own role, docs/security.md).
MonitorLogin monitor_login(const KeeperConfig& config);
std::string config_path(const std::string& state_dir);
std::string state_path(const std::string& state_dir);
std::string pid_path(const std::string& state_dir);

KeeperConfig load_config(const std::string& state_dir);
KeeperState load_state(const std::string& state_dir);
void save_config(const std::string& state_dir, const KeeperConfig& config);
void save_state(const std::string& state_dir, const KeeperState& state);

class KeeperLoop {
public:
    // `stop_requested` is polled during long actions so SIGTERM interrupts them.
    KeeperLoop(std::string state_dir, std::function<bool()> stop_requested);

    // One period: returns true when a transition happened (loop again at once).
    // Never throws: unexpected errors are logged as one line.
    bool step();
    // Sleeps up to poll_period, waking early on a NOTIFY for this node's group.
    void wait_for_next_period();
    // SIGHUP: re-read keeper.json (keeps the old config when the new one is invalid).
    void reload_config();
    // On exit: stop Postgres when keeper.json says so.
    void shutdown();

    // Called with a copy of every observation the loop makes (the HTTP endpoint's snapshot).
    void set_observer(std::function<void(const NodeObservation&)> observer) { observer_ = std::move(observer); }

    const KeeperState& state() const { return state_; }
    const KeeperConfig& config() const { return config_; }

private:
    bool step_unguarded();
    Observation observe_and_track();
    NodeReport make_report(const Observation& obs);
    // What plan_supervision and report_postgres_running decide from (libautofailover/supervision.h).
    SupervisionView supervision_view(const Observation& obs) const;
    void bound_monitor_call(const Observation& obs);
    bool contact_monitor(const Observation& obs);
    void heartbeat();  // called from inside long actions
    bool pre_promote_allows();  // hooks.pre_promote; false: vetoed (reported) or goal moved
    bool check_partition(const Observation& obs);
    void note_monitor_without_lease();
    // Fetches the formation's client networks when the monitor's version differs from the applied one.
    void refresh_formation_clients(std::int64_t monitor_version);
    void warn_on_version_mismatch();  // once, at the first answer or refusal of the monitor
    // Hands the fencing deadline to Postgres while this node is a confirmed primary.
    void renew_write_lease(const Observation& obs);
    // How long until a writable primary would have to fence (max when it never would):
    // monitor calls and sleeps are cut to it, so fencing is never late.
    std::chrono::milliseconds time_to_fencing_deadline() const;
    // true when it restarted Postgres: the caller reports at once instead of waiting a poll period.
    bool supervise(const Observation& obs);
    bool rebuild_if_unfollowable(ActionContext& ctx, const Observation& obs);
    bool advance_towards_goal();
    void persist();
    NodeObservation node_observation() const;
    std::string name() const;

    std::string state_dir_;
    std::function<bool()> stop_requested_;
    KeeperConfig config_;
    KeeperState state_;
    LocalPostgres pg_;
    MonitorLink monitor_;
    WriteLease write_lease_;

    NodeAssignment assignment_;
    std::vector<OtherNode> others_;
    bool others_known_ = false;
    bool contacted_since_start_ = false;
    bool version_checked_ = false;
    bool monitor_was_unreachable_ = false;
    bool monitor_without_lease_ = false;
    std::int64_t formation_clients_failed_version_ = -1;  // logged once per version
    std::chrono::steady_clock::time_point last_heartbeat_{};
    int fence_generation_ = 0;
    std::string last_error_;  // logged once until it changes
    Observation last_observation_;
    // When this standby last had every received WAL byte replayed (replay_time_lag).
    std::optional<TimePoint> replay_caught_up_at_;
    std::function<void(const NodeObservation&)> observer_;

    // While a standby does not stream: its server log, read for errors no retry can fix.
    std::optional<ServerLogWatch> standby_log_watch_;

    // Restart budget of a crashed Postgres.
    std::optional<std::chrono::steady_clock::time_point> down_since_;
    int restart_attempts_ = 0;
};

}  // namespace autofailover::keeper
