// keeper.json "hooks" (docs/operations.md): operator programs run when this node
// starts, stops, changes role or fences itself. They run on one worker thread of
// their own, in order, each killed at its timeout: the keeper loop only queues an
// event, so a slow or hung hook never delays fencing or promotion.
#pragma once

#include "keeper/keeper_config.h"
#include "keeper/node_observation.h"
#include "libautofailover/node_state.h"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace autofailover::keeper {

struct HookEvent {
    std::string hook;     // on_start, on_stop, on_role_change, on_fence
    std::string program;  // absolute path, run without arguments
    std::vector<std::string> env;  // "AUTOFAILOVER_...=value"
};

class HookRunner {
public:
    // `node`: for log lines. `max_queued`: events beyond it drop the oldest (logged).
    HookRunner(std::string node, std::chrono::milliseconds timeout, std::size_t max_queued = 16);
    // Runs what is queued (each bounded by the timeout), then stops.
    ~HookRunner();
    HookRunner(const HookRunner&) = delete;
    HookRunner& operator=(const HookRunner&) = delete;

    void submit(HookEvent event);

private:
    void run();

    std::string node_;
    std::chrono::milliseconds timeout_;
    std::size_t max_queued_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<HookEvent> queue_;
    bool stopping_ = false;
    std::thread worker_;
};

// The role a hook sees: "primary" (writable states), "standby", "demoted" (stopped
// writing: draining, demote_timeout, demoted), "maintenance", or "none" (init, dropped...).
std::string hook_role(NodeState state);

// Pure: the hooks due between two successive observations. `previous` null: the keeper's
// first observation (on_start). on_role_change when hook_role changes, on_fence when the
// node fenced itself. Hooks without a program are left out.
std::vector<HookEvent> hook_events(const KeeperConfig::Hooks& hooks, const NodeObservation* previous,
                                   const NodeObservation& now);
// pre_promote: the environment of the other hooks, AUTOFAILOVER_NEW_ROLE=primary (the
// role it would take), the primary variables naming the primary as last known.
HookEvent pre_promote_event(const KeeperConfig::Hooks& hooks, const NodeObservation& now);
// on_stop, from the last observation.
std::vector<HookEvent> stop_hook_events(const KeeperConfig::Hooks& hooks, const NodeObservation& last);

}  // namespace autofailover::keeper
