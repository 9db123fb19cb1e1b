// keeper.h: what autoctl and the keeper binary call.
#include "keeper/keeper.h"

#include "libautofailover/input_validation.h"

#include "support/conninfo.h"
#include "keeper/keeper_log.h"
#include "keeper/keeper_loop.h"
#include "keeper/http_endpoint.h"
#include "keeper/hooks.h"
#include "keeper/local_postgres.h"
#include "keeper/monitor_link.h"
#include "keeper/pid_file.h"
#include "support/atomic_file.h"
#include "keeper/postgres_files.h"
#include "keeper/replication_auth.h"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

// Set by signal handlers, read by the loop: the one place a signal may touch.
volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_reload_signal = 0;

extern "C" void on_stop_signal(int signo) { g_stop_signal = signo; }
extern "C" void on_reload_signal(int) { g_reload_signal = 1; }

void install_signal_handlers() {
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_reload_signal;
    ::sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

void refuse_root() {
    if (::geteuid() == 0)
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "the keeper must run as the PostgreSQL OS user, not root (PostgreSQL refuses root); "
                          "e.g. runuser -u postgres -- autoctl ...");
}

std::string absolute(const std::string& path) {
    std::string p = fs::absolute(path).lexically_normal().string();
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

std::string resolve_state_dir(const std::string& pgdata, const std::string& state_dir) {
    return state_dir.empty() ? support::default_state_dir(absolute(pgdata)) : absolute(state_dir);
}

bool is_initialized(NodeState s) {
    return s == NodeState::Single || s == NodeState::Primary || s == NodeState::WaitPrimary ||
           s == NodeState::Catchingup || s == NodeState::Secondary;
}

CreatedNode created_from(const KeeperConfig& config, const KeeperState& state, const std::string& dir) {
    CreatedNode node;
    node.node_id = state.node_id;
    node.name = config.name;
    node.group_id = state.group_id;
    node.state = std::string(to_string(state.current_state));
    node.goal_state = std::string(to_string(state.goal_state));
    node.state_dir = dir;
    return node;
}

// Before registering, so that a bad password file or a failing openssl leaves nothing behind.
// Without --replication-password-file the formation's password comes from the monitor
// (register_node), written by store_registration_secrets.
void set_up_credentials(const CreateNodeOptions& options, const std::string& dir, KeeperConfig& config) {
    if (options.auth_method != "trust" && options.auth_method != "scram-sha-256")
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "--auth " + options.auth_method + ": expected scram-sha-256 (the default) or trust");
    if (!options.replication_password_file.empty()) {
        config.replication_passfile = dir + "/replication.pgpass";
        write_replication_pgpass(config.replication_passfile, read_password_file(options.replication_password_file));
    }
    const bool ca = !options.ssl_ca_file.empty() || !options.server_cert.empty() || !options.server_key.empty();
    if (ca && (options.ssl_ca_file.empty() || options.server_cert.empty() || options.server_key.empty()))
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "--ssl-ca-file, --server-cert and --server-key go together (a certificate signed by your CA)");
    if (!options.ssl) {
        if (ca) throw KeeperError(KeeperError::Kind::BadArguments, "--no-ssl excludes --ssl-ca-file/--server-cert/--server-key");
        return;
    }
    config.ssl_cert_file = dir + "/server.crt";
    config.ssl_key_file = dir + "/server.key";
    if (ca) {
        config.ssl_ca_file = dir + "/root.crt";
        install_ca_signed_certificate(options.ssl_ca_file, options.server_cert, options.server_key, config.ssl_ca_file,
                                      config.ssl_cert_file, config.ssl_key_file);
    } else {
        create_self_signed_certificate(config.ssl_cert_file, config.ssl_key_file, options.hostname);
    }
}

// The node's own monitor credential, and the formation's replication password
// unless the operator gave one: 0600 files in the state dir, never keeper.json.
void store_registration_secrets(const Registration& reg, const std::string& dir, KeeperConfig& config) {
    config.monitor_user = reg.keeper_role;
    config.monitor_passfile = dir + "/monitor.pgpass";
    write_monitor_pgpass(config.monitor_passfile, reg.keeper_role, reg.keeper_password);
    if (config.replication_passfile.empty()) {
        if (reg.replication_password.empty())
            throw KeeperError(KeeperError::Kind::MonitorError, "the monitor returned no replication password");
        config.replication_passfile = dir + "/replication.pgpass";
        write_replication_pgpass(config.replication_passfile, reg.replication_password);
    }
}

// Before anything is written: every value goes into pg_hba.conf.
void check_client_access(const std::vector<std::string>& networks, const std::string& database,
                         const std::string& role) {
    for (const auto& network : networks)
        if (auto problem = autofailover::client_network_problem(network); !problem.empty())
            throw KeeperError(KeeperError::Kind::BadArguments, "--allow-clients " + network + ": " + problem);
    if (networks.size() > 64) throw KeeperError(KeeperError::Kind::BadArguments, "--allow-clients: at most 64 networks");
    if (auto problem = autofailover::client_database_problem(database); !problem.empty())
        throw KeeperError(KeeperError::Kind::BadArguments, "--client-database " + database + ": " + problem);
    if (auto problem = autofailover::client_role_problem(role); !problem.empty())
        throw KeeperError(KeeperError::Kind::BadArguments, "--client-role " + role + ": " + problem);
}

}  // namespace

std::optional<long> set_client_access(const std::string& pgdata, const std::string& state_dir,
                                      const std::vector<std::string>& allow_clients,
                                      const std::optional<std::string>& client_database,
                                      const std::optional<std::string>& client_role) {
    check_client_access(allow_clients, client_database.value_or("all"), client_role.value_or("all"));
    const std::string dir = resolve_state_dir(absolute(pgdata), state_dir);
    KeeperConfig config = load_config(dir);
    if (config.skip_pg_hba && !allow_clients.empty())
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "this node was created with --skip-pg-hba: the keeper writes no pg_hba.conf line; add the "
                          "application's lines to pg_hba.conf yourself");
    config.allow_clients = allow_clients;
    if (client_database) config.client_database = *client_database;
    if (client_role) config.client_role = *client_role;
    check_client_access(config.allow_clients, config.client_database, config.client_role);
    // The same checks as a keeper's load, before the running keeper reads it.
    config_from_json(config_to_json(config));
    save_config(dir, config);
    auto pid = live_pid_in(pid_path(dir));
    if (pid && ::kill(static_cast<pid_t>(*pid), SIGHUP) != 0) return std::nullopt;
    return pid;
}

ClientAccess client_access(const std::string& pgdata, const std::string& state_dir) {
    const std::string dir = resolve_state_dir(absolute(pgdata), state_dir);
    const KeeperConfig config = load_config(dir);
    // The formation's list as this keeper last fetched it (state.json); unreadable state: none.
    FormationClients formation;
    try {
        formation = load_state(dir).formation_clients;
    } catch (const std::exception&) {
    }
    ClientAccess a;
    a.formation_allow_clients = formation.networks;
    a.formation_client_database = formation.client_database;
    a.formation_client_role = formation.client_role;
    a.formation_version = formation.version;
    a.allow_clients = config.allow_clients;
    a.client_database = config.client_database;
    a.client_role = config.client_role;
    a.skip_pg_hba = config.skip_pg_hba;
    a.auth_method = config.auth_method;
    a.ssl = ssl_enabled(config);
    a.ssl_ca_file = config.ssl_ca_file;
    a.hba_lines = client_hba_lines(config, formation);
    // Applied: every expected line is in pg_hba.conf, and no other client line is.
    const std::string text = support::read_file_if_exists(config.pgdata + "/pg_hba.conf").value_or("");
    std::vector<std::string> present;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        present.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    a.hba_applied = true;
    for (const auto& line : a.hba_lines)
        if (std::find(present.begin(), present.end(), line) == present.end()) a.hba_applied = false;
    for (const auto& line : present)
        if (line.rfind("host all autofailover_replicator,autofailover_monitor ", 0) == 0 &&
            std::find(a.hba_lines.begin(), a.hba_lines.end(), line) == a.hba_lines.end())
            a.hba_applied = false;
    return a;
}

// --backup*: before anything is written; the values reach command lines and archive_command.
void check_backup_options(const CreateNodeOptions& options) {
    if (options.backup_tool.empty()) {
        if (!options.backup_stanza.empty() || !options.backup_config.empty())
            throw KeeperError(KeeperError::Kind::BadArguments, "--backup-stanza and --backup-config need --backup pgbackrest");
        return;
    }
    for (auto [option, key, value] : {std::tuple<const char*, const char*, const std::string*>{"--backup", "tool", &options.backup_tool},
                                      {"--backup-stanza", "stanza", &options.backup_stanza},
                                      {"--backup-config", "config", &options.backup_config}})
        if (auto problem = backup_setting_problem(key, *value))
            throw KeeperError(KeeperError::Kind::BadArguments, std::string(option) + " " + printable(*value) + ": " + *problem);
    if (::access(options.backup_config.c_str(), R_OK) != 0)
        throw KeeperError(KeeperError::Kind::BadArguments,
                          "--backup-config " + options.backup_config + ": not readable by this OS user");
}

CreatedNode create_postgres_node(const CreateNodeOptions& options) {
    refuse_root();
    if (options.pgdata.empty()) throw KeeperError(KeeperError::Kind::BadArguments, "--pgdata is required");
    if (options.monitor_uri.empty()) throw KeeperError(KeeperError::Kind::BadArguments, "--monitor is required");
    if (options.hostname.empty()) throw KeeperError(KeeperError::Kind::BadArguments, "--hostname is required");
    const std::string pgdata = absolute(options.pgdata);
    const std::string dir = resolve_state_dir(pgdata, options.state_dir);
    // Before anything is written or registered: these end up in pg_ctl's shell command,
    // postgresql.conf and pg_hba.conf (keeper.json is checked the same way at every load).
    if (auto reason = unsafe_path_reason(pgdata))
        throw KeeperError(KeeperError::Kind::BadArguments, "--pgdata " + pgdata + ": " + *reason);
    if (auto reason = unsafe_path_reason(dir))
        throw KeeperError(KeeperError::Kind::BadArguments, "--state-dir " + dir + ": " + *reason);
    if (auto reason = invalid_hostname_reason(options.hostname))
        throw KeeperError(KeeperError::Kind::BadArguments, "--hostname " + options.hostname + ": " + *reason);
    check_client_access(options.allow_clients, options.client_database, options.client_role);
    if (auto reason = invalid_hostname_reason(options.http_listen))
        throw KeeperError(KeeperError::Kind::BadArguments, "--http-listen " + options.http_listen + ": " + *reason);
    if (options.http_port != 0 && options.http_port == options.port)
        throw KeeperError(KeeperError::Kind::BadArguments, "--http-port must differ from --pgport");
    check_backup_options(options);
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);

    KeeperConfig config;
    KeeperState state = load_state(dir);
    if (state.dropped) {
        log_info("node_{} state=dropped was removed from the formation; registering again", state.node_id);
        state = KeeperState{};
    }
    // keeper.json keeps the monitor's address; the bootstrap password stays with the operator.
    const std::string monitor_address = support::conninfo_without_password(options.monitor_uri);
    if (state.node_id != 0) {
        config = load_config(dir);
        if (support::conninfo_without_password(config.monitor_uri) != monitor_address || config.formation != options.formation ||
            config.pgdata != pgdata)
            throw KeeperError(KeeperError::Kind::BadArguments,
                              dir + " already holds node " + config.name + " of formation " + config.formation +
                                  " on another monitor or data directory; use another --pgdata or drop that node");
        log_info("node={} state={} already registered as node id {}", config.name, to_string(state.current_state),
                 state.node_id);
    } else {
        config.monitor_uri = monitor_address;
        config.formation = options.formation;
        config.hostname = options.hostname;
        config.port = options.port;
        config.pgdata = pgdata;
        config.pg_bindir = options.pg_bindir;
        config.auth_method = options.auth_method;
        config.allow_clients = options.allow_clients;
        config.client_database = options.client_database;
        config.client_role = options.client_role;
        config.skip_pg_hba = options.skip_pg_hba;
        config.http_port = options.http_port;
        config.http_listen = options.http_listen;
        config.backup.tool = options.backup_tool;
        config.backup.stanza = options.backup_stanza;
        config.backup.config = options.backup_config;
        set_up_credentials(options, dir, config);
        // The bootstrap password may only register; it is kept (0600) for a re-registration
        // after `drop node`, never in keeper.json and never used for anything else.
        const std::string bootstrap_passfile = write_bootstrap_pgpass(dir, options.monitor_password_file);
        // Registration is the one call made with the bootstrap credential of --monitor
        // (its password, when the monitor needs one, from --monitor-password-file).
        MonitorLink monitor(MonitorLogin{options.monitor_uri, "", bootstrap_passfile}, std::chrono::seconds(10));
        Registration reg;
        try {
            reg = monitor.register_node(config.formation, config.hostname, config.port, options.name, options.group,
                                        options.candidate_priority, options.replication_quorum);
        } catch (const MonitorUnreachable& e) {
            throw KeeperError(KeeperError::Kind::MonitorError, e.what());
        } catch (const MonitorRefused& e) {
            throw KeeperError(KeeperError::Kind::MonitorError, std::string("the monitor refused the registration: ") + e.what());
        }
        config.name = reg.node_name;
        store_registration_secrets(reg, dir, config);
        state.node_id = reg.node_id;
        state.group_id = reg.group_id;
        state.goal_state = reg.goal;
        state.network_partition_timeout = config.timeouts.network_partition_timeout;
        save_config(dir, config);
        save_state(dir, state);
        log_info("node={} state=init registered as node id {} in formation {} group {}, goal {}", config.name,
                 reg.node_id, config.formation, reg.group_id, to_string(reg.goal));
    }
    if (!options.initialize_now || is_initialized(state.current_state)) return created_from(config, state, dir);

    PidFile pid(pid_path(dir));
    KeeperLoop loop(dir, [] { return false; });
    const auto deadline = SteadyClock::now() + options.init_timeout;
    while (!is_initialized(loop.state().current_state)) {
        if (SteadyClock::now() > deadline)
            throw KeeperError(KeeperError::Kind::LocalPostgres,
                              "node " + loop.config().name + " is still " +
                                  std::string(to_string(loop.state().current_state)) + " (goal " +
                                  std::string(to_string(loop.state().goal_state)) +
                                  ") after init_timeout; `autoctl run` continues from there");
        if (!loop.step()) loop.wait_for_next_period();
    }
    return created_from(loop.config(), loop.state(), dir);
}

int run_keeper(const std::string& pgdata, const std::string& state_dir) {
    try {
        refuse_root();
        const std::string dir = resolve_state_dir(pgdata, state_dir);
        check_node_credentials(load_config(dir));
        PidFile pid(pid_path(dir));
        g_stop_signal = 0;
        g_reload_signal = 0;
        install_signal_handlers();
        KeeperLoop loop(dir, [] { return g_stop_signal != 0; });
        if (loop.state().dropped) {
            log_info("node={} state=dropped this node was removed from the monitor; nothing to run", loop.config().name);
            return 121;
        }
        // Bound at start, before the first step, so a taken port stops the keeper at once.
        std::unique_ptr<HttpEndpoint> http;
        if (const auto& c = loop.config(); c.http_port != 0) {
            const std::string& host = c.http_listen;
            try {
                http = std::make_unique<HttpEndpoint>(host, c.http_port, c.http_threads, c.timeouts.http_io_timeout,
                                                      c.timeouts.http_liveness_timeout);
            } catch (const std::runtime_error& e) {
                throw KeeperError(KeeperError::Kind::BadArguments, e.what());
            }
            log_info("node={} state={} HTTP endpoint on {}:{}", c.name, to_string(loop.state().current_state), host,
                     c.http_port);
        }
        // Hooks only queue from the loop; the runner's own thread runs them (keeper/hooks.h).
        std::unique_ptr<HookRunner> hooks;
        std::optional<NodeObservation> last_observation;
        const KeeperConfig::Hooks hook_config = loop.config().hooks;
        if (hook_config.any()) hooks = std::make_unique<HookRunner>(loop.config().name, hook_config.timeout);
        if (http || hooks)
            loop.set_observer([&](const NodeObservation& o) {
                if (http) http->publish(o);
                if (hooks) {
                    for (auto& e : hook_events(hook_config, last_observation ? &*last_observation : nullptr, o))
                        hooks->submit(std::move(e));
                    last_observation = o;
                }
            });
        log_info("node={} state={} keeper started (pid {}, state dir {}, monitor poll every {} ms)",
                 loop.config().name, to_string(loop.state().current_state), ::getpid(), dir,
                 loop.config().timeouts.poll_period.count());
        while (g_stop_signal == 0) {
            if (g_reload_signal) {
                g_reload_signal = 0;
                loop.reload_config();
            }
            const bool transitioned = loop.step();
            if (loop.state().dropped) {
                // Report `dropped` once more: that is what lets the monitor forget the node.
                loop.step();
                log_info("node={} state=dropped node removed from the formation; keeper exits", loop.config().name);
                return 121;
            }
            if (!transitioned && g_stop_signal == 0) loop.wait_for_next_period();
        }
        log_info("node={} state={} keeper stopping on signal {}", loop.config().name,
                 to_string(loop.state().current_state), static_cast<int>(g_stop_signal));
        loop.shutdown();
        if (hooks && last_observation)
            for (auto& e : stop_hook_events(hook_config, *last_observation)) hooks->submit(std::move(e));
        return 0;
    } catch (const KeeperError& e) {
        log_error("keeper cannot run: {}", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        log_error("keeper cannot run: {}", e.what());
        return 1;
    }
}

bool stop_keeper(const std::string& pgdata, const std::string& state_dir, std::chrono::milliseconds wait) {
    const std::string dir = resolve_state_dir(pgdata, state_dir);
    auto pid = live_pid_in(pid_path(dir));
    if (!pid) return true;
    if (::kill(static_cast<pid_t>(*pid), SIGTERM) != 0) return !live_pid_in(pid_path(dir));
    const auto deadline = SteadyClock::now() + wait;
    while (SteadyClock::now() < deadline) {
        if (!live_pid_in(pid_path(dir))) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return !live_pid_in(pid_path(dir));
}

KeeperStatus keeper_status(const std::string& pgdata, const std::string& state_dir) {
    KeeperStatus status;
    const std::string dir = resolve_state_dir(pgdata, state_dir);
    status.state_dir = dir;
    status.keeper_pid = live_pid_in(pid_path(dir));
    status.keeper_running = status.keeper_pid.has_value();
    KeeperConfig config;
    try {
        config = load_config(dir);
    } catch (const KeeperError&) {
        config.pgdata = absolute(pgdata);
        status.postgres_running = LocalPostgres(config).postmaster_alive();
        return status;
    }
    status.name = config.name;
    status.formation = config.formation;
    status.monitor_uri_redacted = support::redact_conninfo(config.monitor_uri);
    status.postgres_running = LocalPostgres(config).postmaster_alive();
    KeeperState state = load_state(dir);
    if (state.node_id != 0) status.node_id = state.node_id;
    status.group_id = state.group_id;
    status.current_state = std::string(to_string(state.current_state));
    status.goal_state = std::string(to_string(state.goal_state));
    if (state.last_monitor_contact)
        status.seconds_since_monitor_contact =
            std::chrono::duration<double>(Clock::now() - *state.last_monitor_contact).count();
    return status;
}

}  // namespace autofailover::keeper
