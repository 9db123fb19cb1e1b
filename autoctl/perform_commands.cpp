// autoctl perform switchover | failover | promotion
#include "autoctl/command_tree.h"
#include "autoctl/dry_run.h"
#include "autoctl/exit_codes.h"
#include "autoctl/monitor_client.h"
#include "autoctl/monitor_target.h"
#include "autoctl/state_view.h"
#include "autoctl/wait_for_health.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace autoctl {

namespace {

// How long --wait follows an operation unless told otherwise.
constexpr int kDefaultWaitSeconds = 60;
// How far back in the event log to look for why a role change was abandoned.
constexpr int kEventsToSearch = 50;

// The monitor may abandon a role change (e.g. the candidate did not get all
// WAL within switchover_timeout) and go back to the old primary: the formation
// is healthy again, but the operation failed, and the exit code must say so.
OutcomeCheck expect_new_primary(MonitorClient& monitor, const MonitorTarget& t, const std::string& what) {
    std::string before = primary_of(monitor.current_state(t.formation), t.group);
    auto latest = monitor.last_events(t.formation, 1);
    long long last_event_before = latest.empty() ? 0 : latest.back().event_id;
    return [&monitor, t, what, before, last_event_before](const std::vector<NodeRow>& nodes) {
        std::string after = primary_of(nodes, t.group);
        if (before.empty() || after != before) return;
        // The first assignment that gave the old primary its role back says why.
        std::string reason;
        for (const EventRow& e : monitor.last_events(t.formation, kEventsToSearch)) {
            if (e.event_id > last_event_before && e.group_id == t.group && e.node_name == before &&
                e.reported_state != e.goal_state && (e.goal_state == "primary" || e.goal_state == "wait_primary")) {
                reason = e.description;
                break;
            }
        }
        throw CliError(ExitCode::MonitorError,
                       fmt::format("the {} did not happen: {} is still the primary of group {}{}\n"
                                   "See `autoctl show events` for why; fix that and retry.",
                                   what, before, t.group, reason.empty() ? "" : " (" + reason + ")"));
    };
}

struct PerformOptions {
    MonitorTarget target;
    int wait_seconds = kDefaultWaitSeconds;
    bool accept_data_loss = false;
    std::string name;
    bool dry_run = false;
};

// --dry-run: plan and simulate on the monitor's current snapshot, print, change nothing.
void add_dry_run_option(CLI::App* cmd, PerformOptions& o) {
    cmd->add_flag("--dry-run", o.dry_run,
                  "Print who would be promoted, the commits at risk and what the formation would wait for; "
                  "change nothing");
}

void dry_run(const std::string& command, const PerformOptions& o) {
    MonitorClient monitor(resolve_monitor_uri(o.target));
    std::cout << render_dry_run(command, monitor.plan_operation(command, o.target.formation, o.target.group, o.name,
                                                                o.accept_data_loss));
}

}  // namespace

void add_perform_commands(CLI::App& app) {
    CLI::App* perform = app.add_subcommand("perform", "Planned role changes: switchover, failover, promotion");
    perform->require_subcommand(1);

    auto sw = std::make_shared<PerformOptions>();
    CLI::App* switchover = perform->add_subcommand(
        "switchover", "Hand the primary role to the best standby without losing a commit, then wait for health");
    add_monitor_options(switchover, sw->target);
    switchover->add_option("--group", sw->target.group, "Group id")->capture_default_str();
    add_wait_option(switchover, sw->wait_seconds, kDefaultWaitSeconds);
    add_dry_run_option(switchover, *sw);
    switchover->callback([sw] {
        if (sw->dry_run) return dry_run("switchover", *sw);
        MonitorClient monitor(resolve_monitor_uri(sw->target));
        auto check = expect_new_primary(monitor, sw->target, "switchover");
        run_and_follow(
            monitor, sw->target.formation, sw->wait_seconds,
            [&] {
                monitor.perform_switchover(sw->target.formation, sw->target.group);
                std::cout << fmt::format("switchover of formation {} group {} started\n", sw->target.formation,
                                         sw->target.group);
            },
            std::cout, check);
    });

    auto fo = std::make_shared<PerformOptions>();
    CLI::App* failover = perform->add_subcommand(
        "failover", "Promote the best standby now (the primary is demoted if it is still there), then wait");
    add_monitor_options(failover, fo->target);
    failover->add_option("--group", fo->target.group, "Group id")->capture_default_str();
    failover->add_flag("--accept-data-loss", fo->accept_data_loss,
                       "Promote even when no standby is known to have every acknowledged commit");
    add_wait_option(failover, fo->wait_seconds, kDefaultWaitSeconds);
    add_dry_run_option(failover, *fo);
    failover->callback([fo] {
        if (fo->dry_run) return dry_run("failover", *fo);
        MonitorClient monitor(resolve_monitor_uri(fo->target));
        auto check = expect_new_primary(monitor, fo->target, "failover");
        run_and_follow(
            monitor, fo->target.formation, fo->wait_seconds,
            [&] {
                monitor.perform_failover(fo->target.formation, fo->target.group, fo->accept_data_loss);
                std::cout << fmt::format("failover of formation {} group {} started\n", fo->target.formation,
                                         fo->target.group);
            },
            std::cout, check);
    });

    auto pr = std::make_shared<PerformOptions>();
    CLI::App* promotion =
        perform->add_subcommand("promotion", "Make the named node the primary of its group, then wait");
    add_monitor_options(promotion, pr->target);
    promotion->add_option("--name", pr->name, "Node to promote")->required();
    add_wait_option(promotion, pr->wait_seconds, kDefaultWaitSeconds);
    add_dry_run_option(promotion, *pr);
    promotion->callback([pr] {
        if (pr->dry_run) return dry_run("promotion", *pr);
        MonitorClient monitor(resolve_monitor_uri(pr->target));
        // The monitor refuses to hand the role to the node that holds it; for the
        // operator that request is already fulfilled (scripts may repeat it).
        auto nodes = monitor.current_state(pr->target.formation);
        for (const NodeRow& n : nodes)
            if (n.name == pr->name && n.reported_state == n.goal_state &&
                (n.goal_state == "primary" || n.goal_state == "wait_primary" || n.goal_state == "single")) {
                std::cout << fmt::format("{} is already the primary; nothing to do\n", pr->name)
                          << render_state_table(nodes);
                return;
            }
        bool started = false;
        run_and_follow(
            monitor, pr->target.formation, pr->wait_seconds,
            [&] {
                started = monitor.perform_promotion(pr->target.formation, pr->name);
                std::cout << (started ? fmt::format("promotion of {} requested\n", pr->name)
                                      : fmt::format("{} is already the primary; nothing to do\n", pr->name));
            },
            std::cout, [&](const std::vector<NodeRow>& nodes) {
                for (const NodeRow& n : nodes)
                    if (n.name == pr->name && n.goal_state != "primary")
                        throw CliError(ExitCode::MonitorError,
                                       fmt::format("the promotion of {} did not happen: it is {}. See `autoctl show "
                                                   "events` for why.",
                                                   pr->name, n.goal_state));
            });
    });
}

}  // namespace autoctl
