#include "autoctl/wait_for_health.h"

#include "autoctl/exit_codes.h"
#include "autoctl/formation_health.h"
#include "autoctl/state_view.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <ctime>

namespace autoctl {

namespace {

std::string wall_clock() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    localtime_r(&t, &tm);
    return fmt::format("{:%H:%M:%S}.{:03d}", tm, ms);
}

}  // namespace

void start_following(MonitorClient& monitor) { monitor.listen_for_state_changes(); }

std::vector<NodeRow> wait_until_healthy(MonitorClient& monitor, const std::string& formation,
                                        std::chrono::seconds timeout, std::ostream& progress) {
    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    const auto deadline = started + timeout;
    std::string last_waiting;
    for (;;) {
        auto nodes = monitor.current_state(formation);
        HealthVerdict verdict = assess_formation(nodes);
        if (verdict.healthy) {
            auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
            progress << fmt::format("{} formation {} is healthy after {:.1f}s\n", wall_clock(), formation,
                                    elapsed.count() / 1000.0);
            progress.flush();
            return nodes;
        }
        if (verdict.waiting_for != last_waiting) {
            progress << fmt::format("{} waiting: {}\n", wall_clock(), verdict.waiting_for);
            progress.flush();
            last_waiting = verdict.waiting_for;
        }
        auto now = Clock::now();
        if (now >= deadline) {
            throw CliError(ExitCode::Timeout,
                           fmt::format("formation {} is not healthy after {}s: {}\n\n{}\nThe operation goes on "
                                       "in the background; follow it with `autoctl show state` and "
                                       "`autoctl show events`.",
                                       formation, timeout.count(), verdict.waiting_for, render_state_table(nodes)));
        }
        auto slice = std::min<Clock::duration>(kStateRecheckInterval, deadline - now);
        for (const std::string& payload :
             monitor.wait_for_notifications(std::chrono::duration_cast<std::chrono::milliseconds>(slice)))
            progress << wall_clock() << " " << describe_state_notification(payload) << "\n";
        progress.flush();
    }
}

std::string primary_of(const std::vector<NodeRow>& nodes, int group) {
    for (const NodeRow& n : nodes)
        if (n.group_id == group &&
            (n.goal_state == "primary" || n.goal_state == "wait_primary" || n.goal_state == "single"))
            return n.name;
    return "";
}

void run_and_follow(MonitorClient& monitor, const std::string& formation, int wait_seconds,
                    const std::function<void()>& operation, std::ostream& out, const OutcomeCheck& check_outcome) {
    if (wait_seconds > 0) start_following(monitor);
    operation();
    if (wait_seconds > 0) {
        auto nodes = wait_until_healthy(monitor, formation, std::chrono::seconds(wait_seconds), out);
        out << "\n" << render_state_table(nodes);
        out.flush();
        if (check_outcome) check_outcome(nodes);
    } else {
        out << render_state_table(monitor.current_state(formation));
    }
}

}  // namespace autoctl
