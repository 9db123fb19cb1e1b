// autoctl show metrics | show fsm, autoctl watch: looking at a formation.
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "autoctl/fsm_dot.h"
#include "autoctl/metrics_exporter.h"
#include "autoctl/metrics_text.h"
#include "autoctl/monitor_client.h"
#include "autoctl/monitor_target.h"
#include "autoctl/state_view.h"
#include "autoctl/stop_signals.h"

#include "libautofailover/keeper_transitions.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <thread>
#include <unistd.h>

namespace autoctl {

namespace {

struct WatchOptions {
    MonitorTarget target;
    double interval_seconds = 2.0;
    int count = 0;  // 0: until interrupted
    int events = 8;
    bool no_clear = false;
};

// VT100 "cursor home + erase display": every SSH terminal understands it.
constexpr const char* kClearScreen = "\033[H\033[2J";

std::string watch_frame(MonitorClient& monitor, const WatchOptions& o, const std::string& monitor_uri) {
    const auto nodes = monitor.current_state(o.target.formation);
    const auto events = monitor.last_events(o.target.formation, o.events);
    const std::time_t now = std::time(nullptr);
    std::string frame = fmt::format("formation {} on {}  {:%Y-%m-%d %H:%M:%S} UTC  (every {}s; Ctrl-C quits)\n\n",
                                    o.target.formation, redact_uri(monitor_uri), fmt::gmtime(now),
                                    o.interval_seconds);
    frame += render_state_table(nodes);
    frame += "\nRecent events\n";
    frame += events.empty() ? "none\n" : render_events_table(events);
    return frame;
}

void watch(const WatchOptions& o) {
    const std::string uri = resolve_monitor_uri(o.target);
    const StopSignals stop;  // the loop ends at its next check
    const bool clear = !o.no_clear && isatty(STDOUT_FILENO) == 1;
    std::unique_ptr<MonitorClient> monitor;
    int shown = 0;
    while (!stop.requested()) {
        std::string frame;
        try {
            if (!monitor) monitor = std::make_unique<MonitorClient>(uri);
            frame = watch_frame(*monitor, o, uri);
        } catch (const CliError& e) {
            // A monitor restart or failover must not end the watch: show why, reconnect next time.
            monitor.reset();
            frame = fmt::format("monitor unavailable: {}\n", e.what());
        }
        std::cout << (clear ? kClearScreen : (shown > 0 ? "\n" : "")) << frame << std::flush;
        if (o.count > 0 && ++shown >= o.count) break;
        if (o.count == 0) ++shown;
        const auto until = std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(static_cast<long>(o.interval_seconds * 1000));
        while (!stop.requested() && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

void add_observe_commands(CLI::App& app) {
    CLI::App* show = app.get_subcommand("show");

    auto metrics_opts = std::make_shared<MonitorTarget>();
    metrics_opts->formation.clear();
    auto exporter = std::make_shared<ExporterOptions>();
    CLI::App* metrics = show->add_subcommand(
        "metrics", "The monitor's metrics (autofailover.metrics()) in the Prometheus text format");
    add_monitor_options(metrics, *metrics_opts);
    metrics->add_option("--http-port", exporter->port,
                        "Serve them on GET /metrics at this port until SIGINT/SIGTERM (a Prometheus exporter), "
                        "one monitor query per scrape")
        ->check(CLI::Range(1, 65535));
    metrics->add_option("--http-listen", exporter->listen, "Address the exporter listens on (with --http-port)")
        ->capture_default_str()
        ->check(CLI::ValidIPV4 | CLI::IsMember({"::1", "::"}));
    metrics->callback([metrics_opts, exporter] {
        if (exporter->port > 0) {
            serve_metrics(resolve_monitor_uri(*metrics_opts), metrics_opts->formation, *exporter);
            return;
        }
        MonitorClient monitor(resolve_monitor_uri(*metrics_opts));
        std::cout << render_prometheus(monitor.metrics(metrics_opts->formation));
    });

    auto dot = std::make_shared<bool>(false);
    CLI::App* fsm = show->add_subcommand("fsm", "The keeper's state machine, from libautofailover's transition table");
    fsm->add_flag("--dot", *dot, "Graphviz digraph (make fsm-diagram renders it to docs/fsm.svg)");
    fsm->callback([dot] {
        if (*dot) {
            std::cout << fsm_dot();
            return;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& t : autofailover::keeper_transitions())
            rows.push_back({std::string(autofailover::to_string(t.from)), std::string(autofailover::to_string(t.to)),
                            std::string(autofailover::to_string(t.action)), std::string(t.description)});
        std::cout << render_table({"From", "To", "Keeper action", "Why"}, rows);
    });

    auto w = std::make_shared<WatchOptions>();
    CLI::App* watch_cmd = app.add_subcommand(
        "watch", "Refreshing view of the formation's state and recent events; Ctrl-C (or SIGTERM) quits");
    add_monitor_options(watch_cmd, w->target);
    watch_cmd->add_option("--interval", w->interval_seconds, "Seconds between refreshes")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 3600.0));
    watch_cmd->add_option("--count", w->count, "Refresh this many times, then exit (0: until interrupted)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    watch_cmd->add_option("--events", w->events, "How many recent events to show")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000));
    watch_cmd->add_flag("--no-clear", w->no_clear,
                        "Never clear the screen (the default when stdout is not a terminal): frames follow each other");
    watch_cmd->callback([w] { watch(*w); });
}

}  // namespace autoctl
