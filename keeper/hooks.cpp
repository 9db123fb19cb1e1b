#include "keeper/hooks.h"

#include "support/child_process.h"
#include "keeper/keeper_log.h"

#include <algorithm>

namespace autofailover::keeper {

std::string hook_role(NodeState state) {
    if (is_writable(state)) return "primary";
    switch (state) {
        case NodeState::Secondary:
        case NodeState::Catchingup:
        case NodeState::WaitStandby:
        case NodeState::JoinSecondary:
        case NodeState::ReportLsn:
        case NodeState::FastForward:
        case NodeState::PreparePromotion:
        case NodeState::StopReplication:
            return "standby";
        case NodeState::Draining:
        case NodeState::DemoteTimeout:
        case NodeState::Demoted:
            return "demoted";
        case NodeState::Maintenance:
        case NodeState::PrepareMaintenance:
        case NodeState::WaitMaintenance:
            return "maintenance";
        default:
            return "none";
    }
}

namespace {

HookEvent make_event(const std::string& hook, const std::string& program, const NodeObservation& now,
                     const std::string& old_role) {
    HookEvent e{hook, program, {}};
    auto add = [&e](const char* key, const std::string& value) { e.env.push_back(std::string(key) + "=" + value); };
    add("AUTOFAILOVER_HOOK", hook);
    add("AUTOFAILOVER_NODE", now.node);
    add("AUTOFAILOVER_FORMATION", now.formation);
    add("AUTOFAILOVER_STATE", std::string(to_string(now.reported)));
    add("AUTOFAILOVER_OLD_ROLE", old_role);
    add("AUTOFAILOVER_NEW_ROLE", hook_role(now.reported));
    add("AUTOFAILOVER_PRIMARY_NAME", now.primary_name);
    add("AUTOFAILOVER_PRIMARY_HOST", now.primary_host);
    add("AUTOFAILOVER_PRIMARY_PORT", now.primary_port ? std::to_string(now.primary_port) : std::string());
    return e;
}

}  // namespace

std::vector<HookEvent> hook_events(const KeeperConfig::Hooks& hooks, const NodeObservation* previous,
                                   const NodeObservation& now) {
    std::vector<HookEvent> out;
    if (!previous) {
        if (!hooks.on_start.empty()) out.push_back(make_event("on_start", hooks.on_start, now, "none"));
        return out;
    }
    const std::string old_role = hook_role(previous->reported);
    if (now.fenced && !previous->fenced && !hooks.on_fence.empty())
        out.push_back(make_event("on_fence", hooks.on_fence, now, old_role));
    if (hook_role(now.reported) != old_role && !hooks.on_role_change.empty())
        out.push_back(make_event("on_role_change", hooks.on_role_change, now, old_role));
    return out;
}

HookEvent pre_promote_event(const KeeperConfig::Hooks& hooks, const NodeObservation& now) {
    HookEvent e = make_event("pre_promote", hooks.pre_promote, now, hook_role(now.reported));
    for (auto& var : e.env)
        if (var.rfind("AUTOFAILOVER_NEW_ROLE=", 0) == 0) var = "AUTOFAILOVER_NEW_ROLE=primary";
    return e;
}

std::vector<HookEvent> stop_hook_events(const KeeperConfig::Hooks& hooks, const NodeObservation& last) {
    if (hooks.on_stop.empty()) return {};
    return {make_event("on_stop", hooks.on_stop, last, hook_role(last.reported))};
}

HookRunner::HookRunner(std::string node, std::chrono::milliseconds timeout, std::size_t max_queued)
    : node_(std::move(node)), timeout_(timeout), max_queued_(std::max<std::size_t>(max_queued, 1)),
      worker_([this] { run(); }) {}

HookRunner::~HookRunner() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) worker_.join();
}

void HookRunner::submit(HookEvent event) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (queue_.size() >= max_queued_) {
            log_warn("node={} hook {} dropped: {} hooks already queued (the oldest goes)", node_,
                     queue_.front().hook, queue_.size());
            queue_.pop_front();
        }
        queue_.push_back(std::move(event));
    }
    wake_.notify_one();
}

void HookRunner::run() {
    for (;;) {
        HookEvent event;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left
            event = std::move(queue_.front());
            queue_.pop_front();
        }
        support::ChildOptions options;
        options.timeout = timeout_;
        options.extra_env = event.env;
        try {
            const auto started = std::chrono::steady_clock::now();
            const support::ChildResult r = support::run_child({event.program}, options);
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started).count();
            std::string out = support::tail_of(r.output);
            std::replace(out.begin(), out.end(), '\n', ' ');
            if (r.timed_out)
                log_warn("node={} hook {} killed at its timeout ({} ms): {} output: {}", node_, event.hook,
                         timeout_.count(), event.program, out);
            else if (!r.ok())
                log_warn("node={} hook {} exited {} after {} ms: {} output: {}", node_, event.hook, r.exit_code, ms,
                         event.program, out);
            else
                log_info("node={} hook {} done in {} ms: {} output: {}", node_, event.hook, ms, event.program, out);
        } catch (const std::exception& e) {
            log_error("node={} hook {} could not run {}: {}", node_, event.hook, event.program, e.what());
        }
    }
}

}  // namespace autofailover::keeper
