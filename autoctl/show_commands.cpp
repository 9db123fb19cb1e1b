// autoctl show state | uri | events | settings | standby-names | systemd | haproxy
#include "autoctl/command_tree.h"
#include "autoctl/haproxy_config.h"
#include "autoctl/monitor_client.h"
#include "autoctl/monitor_target.h"
#include "autoctl/state_view.h"
#include "autoctl/systemd_unit.h"
#include "autoctl/wait_for_health.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace autoctl {

namespace {

void show_state(const MonitorTarget& t, int wait_seconds) {
    MonitorClient monitor(resolve_monitor_uri(t));
    std::vector<NodeRow> nodes;
    if (wait_seconds > 0) {
        start_following(monitor);
        nodes = wait_until_healthy(monitor, t.formation, std::chrono::seconds(wait_seconds), std::cerr);
    } else {
        nodes = monitor.current_state(t.formation);
    }
    if (t.json) {
        std::cout << state_to_json(nodes).dump(2) << "\n";
    } else {
        std::cout << render_state_table(nodes);
    }
}

void show_events(const MonitorTarget& t, int count) {
    MonitorClient monitor(resolve_monitor_uri(t));
    auto events = monitor.last_events(t.formation, count);
    std::cout << (t.json ? events_to_json(events).dump(2) + "\n" : render_events_table(events));
}

void show_settings(const MonitorTarget& t) {
    MonitorClient monitor(resolve_monitor_uri(t));
    auto settings = monitor.formation_settings(t.formation);
    std::cout << (t.json ? settings_to_json(settings).dump(2) + "\n" : render_settings_table(settings));
}

void show_standby_names(const MonitorTarget& t) {
    MonitorClient monitor(resolve_monitor_uri(t));
    std::string names = monitor.synchronous_standby_names(t.formation, t.group);
    if (t.json) {
        nlohmann::json j{{"formation", t.formation}, {"group", t.group}, {"synchronous_standby_names", names}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << (names.empty() ? "'' (no synchronous replication)" : names) << "\n";
    }
}

void show_uri(const MonitorTarget& t, const std::string& sslmode) {
    const std::string monitor_uri = resolve_monitor_uri(t);
    MonitorClient monitor(monitor_uri);
    std::string formation_uri = monitor.formation_uri(t.formation, sslmode);
    if (t.json) {
        nlohmann::json j{{"monitor", redact_uri(monitor_uri)}, {"formation", {{t.formation, formation_uri}}}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << render_table({"Type", "Name", "Connection string"},
                                  {{"monitor", "monitor", redact_uri(monitor_uri)},
                                   {"formation", t.formation, formation_uri}});
    }
}

void show_haproxy(const MonitorTarget& t, HaproxyOptions options) {
    MonitorClient monitor(resolve_monitor_uri(t));
    options.formation = t.formation;
    std::vector<HaproxyNode> nodes;
    for (const auto& row : monitor.current_state(t.formation)) nodes.push_back({row.name, row.host, row.port});
    try {
        std::cout << render_haproxy_config(nodes, options);
    } catch (const std::invalid_argument& e) {
        throw CLI::ValidationError("show haproxy", e.what());
    }
}

}  // namespace

void add_show_commands(CLI::App& app) {
    CLI::App* show = app.add_subcommand("show", "Show what the monitor knows: state, URIs, events, settings");
    show->require_subcommand(1);

    auto state_opts = std::make_shared<MonitorTarget>();
    CLI::App* state = show->add_subcommand(
        "state", "Nodes of the formation: health, LSN, reported and goal states; marks nodes whose keeper is down");
    add_monitor_options(state, *state_opts);
    add_json_option(state, *state_opts);
    auto state_wait = std::make_shared<int>(0);
    add_wait_option(state, *state_wait, 0);
    state->callback([state_opts, state_wait] { show_state(*state_opts, *state_wait); });

    auto uri_opts = std::make_shared<MonitorTarget>();
    auto sslmode = std::make_shared<std::string>("prefer");
    CLI::App* uri = show->add_subcommand("uri", "The monitor URI and the formation's multi-host client URI");
    add_monitor_options(uri, *uri_opts);
    add_json_option(uri, *uri_opts);
    uri->add_option("--sslmode", *sslmode, "sslmode written into the client URI")->capture_default_str();
    uri->callback([uri_opts, sslmode] { show_uri(*uri_opts, *sslmode); });

    auto events_opts = std::make_shared<MonitorTarget>();
    auto count = std::make_shared<int>(10);
    CLI::App* events = show->add_subcommand("events", "The last state assignments with their reasons, oldest first");
    add_monitor_options(events, *events_opts);
    add_json_option(events, *events_opts);
    events->add_option("--count", *count, "How many events")->capture_default_str()->check(CLI::PositiveNumber);
    events->callback([events_opts, count] { show_events(*events_opts, *count); });

    auto settings_opts = std::make_shared<MonitorTarget>();
    CLI::App* settings =
        show->add_subcommand("settings", "Formation settings and the monitor's timeouts in effect");
    add_monitor_options(settings, *settings_opts);
    add_json_option(settings, *settings_opts);
    settings->callback([settings_opts] { show_settings(*settings_opts); });

    auto names_opts = std::make_shared<MonitorTarget>();
    CLI::App* names = show->add_subcommand(
        "standby-names", "synchronous_standby_names the monitor computes for a group's primary");
    add_monitor_options(names, *names_opts);
    add_json_option(names, *names_opts);
    names->add_option("--group", names_opts->group, "Group id")->capture_default_str();
    names->callback([names_opts] { show_standby_names(*names_opts); });

    auto haproxy_opts = std::make_shared<MonitorTarget>();
    auto haproxy = std::make_shared<HaproxyOptions>();
    CLI::App* hap = show->add_subcommand(
        "haproxy", "Print an haproxy.cfg routing writes by the keepers' /primary check and reads by /replica");
    add_monitor_options(hap, *haproxy_opts);
    hap->add_option("--bind", haproxy->bind, "Address HAProxy listens on")->capture_default_str();
    hap->add_option("--primary-port", haproxy->primary_port, "Frontend port for writes")
        ->capture_default_str()
        ->check(CLI::Range(1, 65535));
    hap->add_option("--replica-port", haproxy->replica_port, "Frontend port for reads")
        ->capture_default_str()
        ->check(CLI::Range(1, 65535));
    auto* same_port = hap->add_option("--http-port", haproxy->http_port,
                                      "The keepers' HTTP port, the same on every node")
                          ->check(CLI::Range(1, 65535));
    hap->add_option("--http-port-offset", haproxy->http_port_offset,
                    "Each node's HTTP port is its Postgres port plus this offset (several nodes per host)")
        ->excludes(same_port);
    hap->add_option("--check-interval-ms", haproxy->check_interval_ms, "Interval of HAProxy's health checks")
        ->capture_default_str()
        ->check(CLI::Range(50, 60000));
    hap->add_option("--down-check-interval-ms", haproxy->down_check_interval_ms,
                    "Interval of the checks of a server that is down (how soon a new primary is used)")
        ->capture_default_str()
        ->check(CLI::Range(50, 60000));
    hap->callback([haproxy_opts, haproxy] { show_haproxy(*haproxy_opts, *haproxy); });

    auto unit_pgdata = std::make_shared<std::string>();
    CLI::App* systemd = show->add_subcommand(
        "systemd", "Print a systemd unit that runs this node's keeper (or this monitor) under the current user");
    systemd->add_option("--pgdata", *unit_pgdata, "Data directory of the node or monitor")
        ->required()
        ->envname("PGDATA");
    systemd->callback([unit_pgdata] { std::cout << systemd_unit_for(*unit_pgdata); });
}

}  // namespace autoctl
