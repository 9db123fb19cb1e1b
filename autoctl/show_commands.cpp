// autoctl show state | uri | events | settings | standby-names | systemd | haproxy
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "autoctl/haproxy_config.h"
#include "autoctl/monitor_client.h"
#include "autoctl/monitor_target.h"
#include "autoctl/state_view.h"
#include "autoctl/systemd_unit.h"
#include "autoctl/wait_for_health.h"
#include "keeper/keeper.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>

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

struct UriOptions {
    std::string sslmode;      // "" = chosen from the node's or the monitor's TLS settings
    std::string sslrootcert;  // "" = the node's CA (keeper.json) or the monitor URI's
    std::string user;
    std::string dbname;
};

std::string uri_parameter(const std::string& uri, const std::string& key) {
    std::smatch m;
    if (std::regex_search(uri, m, std::regex("[?&]" + key + "=([^&]*)"))) return m[1].str();
    return "";
}

std::string percent_encoded(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~') out += static_cast<char>(c);
        else out += fmt::format("%{:02X}", c);
    }
    return out;
}

void show_uri(const MonitorTarget& t, const UriOptions& o) {
    const std::string monitor_uri = resolve_monitor_uri(t);
    namespace k = autofailover::keeper;
    std::optional<k::ClientAccess> access;
    if (!t.pgdata.empty()) {
        try {
            access = k::client_access(t.pgdata);
        } catch (const std::exception& e) {
            throw CliError(ExitCode::BadArguments, fmt::format("--pgdata {}: {}", t.pgdata, e.what()));
        }
    }
    // With a CA the application verifies that the server is the node it asked for (verify-full).
    std::string sslmode = o.sslmode;
    std::string rootcert = o.sslrootcert;
    if (sslmode.empty()) {
        if (access && !access->ssl_ca_file.empty()) sslmode = "verify-full";
        else if (access) sslmode = access->ssl ? "require" : "prefer";
        else if (!rootcert.empty()) sslmode = "verify-full";
        else if (uri_parameter(monitor_uri, "sslmode") == "verify-full") sslmode = "verify-full";
        else if (uri_parameter(monitor_uri, "sslmode") == "require") sslmode = "require";
        else sslmode = "prefer";
    }
    if (rootcert.empty() && (sslmode == "verify-full" || sslmode == "verify-ca")) {
        if (access && !access->ssl_ca_file.empty()) rootcert = access->ssl_ca_file;
        else rootcert = uri_parameter(monitor_uri, "sslrootcert");
    }
    if (!o.user.empty() && !std::regex_match(o.user, std::regex(R"([A-Za-z_][A-Za-z0-9_$-]{0,62})")))
        throw CliError(ExitCode::BadArguments, "--user must be a plain role name (letters, digits, _, $, -)");
    if (!o.dbname.empty() && !std::regex_match(o.dbname, std::regex(R"([A-Za-z_][A-Za-z0-9_$-]{0,62})")))
        throw CliError(ExitCode::BadArguments, "--dbname must be a plain database name (letters, digits, _, $, -)");
    MonitorClient monitor(monitor_uri);
    std::string formation_uri = monitor.formation_uri(t.formation, sslmode);
    if (!rootcert.empty()) formation_uri += "&sslrootcert=" + percent_encoded(rootcert);
    if (!o.dbname.empty()) formation_uri = std::regex_replace(formation_uri, std::regex(R"(/[^/?]*\?)"), "/" + o.dbname + "?");
    if (!o.user.empty()) formation_uri = std::regex_replace(formation_uri, std::regex("^(postgres(ql)?://)"), "$1" + o.user + "@");
    if (t.json) {
        nlohmann::json j{{"monitor", redact_uri(monitor_uri)}, {"formation", {{t.formation, formation_uri}}}};
        j["client"] = {{"sslmode", sslmode}, {"sslrootcert", rootcert}, {"user", o.user}};
        if (access) {
            j["client"]["allow_clients"] = access->allow_clients;
            j["client"]["client_database"] = access->client_database;
            j["client"]["client_role"] = access->client_role;
            j["client"]["auth_method"] = access->auth_method;
            j["client"]["formation_allow_clients"] = access->formation_allow_clients;
            j["client"]["formation_client_database"] = access->formation_client_database;
            j["client"]["formation_client_role"] = access->formation_client_role;
            j["client"]["formation_client_access_version"] = access->formation_version;
        }
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << render_table({"Type", "Name", "Connection string"},
                              {{"monitor", "monitor", redact_uri(monitor_uri)},
                               {"formation", t.formation, formation_uri}});
    std::cout << "\nThe formation URI holds no password. Applications connect as their own role"
              << (o.user.empty() ? " (--user, or user=/PGUSER)" : " " + o.user)
              << ": create it on the primary with a password (CREATE ROLE app LOGIN, then \\password app in psql);\n"
                 "its password goes in a pgpass file (passfile= or PGPASSFILE), never in the URI. docs/clients.md.\n";
    if (rootcert.empty() && (sslmode == "verify-full" || sslmode == "verify-ca"))
        std::cout << "sslmode=" << sslmode << " needs the CA: add sslrootcert=<CA file> (or --sslrootcert).\n";
    else if (!rootcert.empty())
        std::cout << "sslrootcert " << rootcert << " must hold the CA certificate on the application's host.\n";
    if (access) {
        if (access->skip_pg_hba)
            std::cout << "This node runs with --skip-pg-hba: its pg_hba.conf is yours to write.\n";
        else if (access->allow_clients.empty() && access->formation_allow_clients.empty())
            std::cout << "This node admits applications from loopback only: autoctl set formation allow-clients CIDR "
                         "(every node), or autoctl set node allow-clients CIDR --pgdata DIR (this node).\n";
        else if (!access->allow_clients.empty())
            std::cout << fmt::format("This node admits role {} to database {} from {} ({}{}).\n",
                                     access->client_role, access->client_database,
                                     fmt::join(access->allow_clients, ", "), access->ssl ? "hostssl " : "host ",
                                     access->auth_method);
        if (!access->skip_pg_hba && !access->formation_allow_clients.empty())
            std::cout << fmt::format("Formation-wide (version {}): role {} to database {} from {} ({}{}).\n",
                                     access->formation_version, access->formation_client_role,
                                     access->formation_client_database, fmt::join(access->formation_allow_clients, ", "),
                                     access->ssl ? "hostssl " : "host ", access->auth_method);
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
    auto uri_extra = std::make_shared<UriOptions>();
    CLI::App* uri = show->add_subcommand("uri", "The monitor URI and the formation's multi-host client URI");
    add_monitor_options(uri, *uri_opts);
    add_json_option(uri, *uri_opts);
    uri->add_option("--sslmode", uri_extra->sslmode,
                    "sslmode written into the client URI (default: verify-full when --pgdata's node has a CA, require "
                    "when it runs TLS, else the monitor URI's sslmode, else prefer)")
        ->check(CLI::IsMember({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}));
    uri->add_option("--sslrootcert", uri_extra->sslrootcert,
                    "CA file named in the URI for verify-full (default: the node's CA, or the monitor URI's)");
    uri->add_option("--user", uri_extra->user, "The application's role, written into the URI");
    uri->add_option("--dbname", uri_extra->dbname, "Database in the URI (default: the formation's)");
    uri->callback([uri_opts, uri_extra] { show_uri(*uri_opts, *uri_extra); });

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
