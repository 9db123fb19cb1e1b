#include "keeper/adoption.h"

#include "support/conninfo.h"
#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "keeper/keeper_loop.h"
#include "keeper/local_postgres.h"
#include "keeper/monitor_link.h"
#include "keeper/pid_file.h"
#include "keeper/replication_auth.h"

#include <csignal>
#include <filesystem>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

// The standby states a new monitor can adopt (libautofailover adopt rules).
bool adoptable_standby_state(NodeState s) { return s == NodeState::Secondary || s == NodeState::Catchingup; }

// The keeper's word (state.json) must match what Postgres is: a node that says
// primary while in recovery, or the reverse, is mid-transition or damaged, and the
// new monitor would build on a false claim.
void check_local_postgres(const std::string& name, NodeState state, const Observation& obs) {
    if (!obs.accepting)
        throw KeeperError(KeeperError::Kind::LocalPostgres,
                          "node " + name + ": the local Postgres does not accept connections; only a running node "
                          "can be adopted (start it with autoctl run)");
    if (is_writable(state) && obs.in_recovery)
        throw KeeperError(KeeperError::Kind::LocalPostgres,
                          "node " + name + ": state.json says " + std::string(to_string(state)) +
                              " but Postgres is in recovery; refusing to claim it is the primary");
    if (adoptable_standby_state(state) && !obs.in_recovery)
        throw KeeperError(KeeperError::Kind::LocalPostgres,
                          "node " + name + ": state.json says " + std::string(to_string(state)) +
                              " but Postgres is not in recovery (a second primary?); fix this before adopting");
}

}  // namespace

AdoptedNode adopt_by_new_monitor(const AdoptOptions& options) {
    namespace fs = std::filesystem;
    if (::geteuid() == 0)
        throw KeeperError(KeeperError::Kind::BadArguments, "run autoctl enable monitor as the PostgreSQL OS user, not root");
    if (options.pgdata.empty()) throw KeeperError(KeeperError::Kind::BadArguments, "--pgdata is required");
    if (options.monitor_uri.empty()) throw KeeperError(KeeperError::Kind::BadArguments, "--monitor is required");
    const std::string pgdata = fs::absolute(options.pgdata).lexically_normal().string();
    const std::string dir = options.state_dir.empty() ? support::default_state_dir(pgdata)
                                                      : fs::absolute(options.state_dir).lexically_normal().string();
    KeeperConfig config = load_config(dir);
    const KeeperState state = load_state(dir);
    if (state.node_id == 0)
        throw KeeperError(KeeperError::Kind::BadArguments, dir + " holds no registered node: nothing to adopt");
    if (state.dropped)
        throw KeeperError(KeeperError::Kind::BadArguments, "node " + config.name + " was dropped: nothing to adopt");

    LocalPostgres pg(config);
    const Observation obs = pg.observe();
    check_local_postgres(config.name, state.current_state, obs);
    std::optional<std::string> system_identifier;
    if (auto control = pg.control_data(); control && !control->system_identifier.empty())
        system_identifier = control->system_identifier;

    // The bootstrap password is used for this one call, from a 0600 file in the state dir.
    const std::string bootstrap_passfile = write_bootstrap_pgpass(dir, options.monitor_password_file);
    MonitorLink monitor(MonitorLogin{options.monitor_uri, "", bootstrap_passfile}, std::chrono::seconds(10));
    Registration reg;
    try {
        reg = monitor.adopt_node(config.formation, state.node_id, config.name, config.hostname, config.port,
                                 state.group_id, state.current_state, obs.timeline, obs.lsn,
                                 options.candidate_priority.value_or(state.candidate_priority),
                                 options.replication_quorum.value_or(state.replication_quorum), system_identifier);
    } catch (const MonitorUnreachable& e) {
        throw KeeperError(KeeperError::Kind::MonitorError, e.what());
    } catch (const MonitorRefused& e) {
        throw KeeperError(KeeperError::Kind::MonitorError,
                          std::string("the new monitor refused to adopt node ") + config.name + ": " + e.what());
    }

    // pgpass first: a keeper that reloads between the two writes still finds the
    // old monitor in keeper.json (dead anyway), never a role without its password.
    config.monitor_passfile = dir + "/monitor.pgpass";
    write_monitor_pgpass(config.monitor_passfile, reg.keeper_role, reg.keeper_password);
    config.monitor_uri = support::conninfo_without_password(options.monitor_uri);
    config.monitor_user = reg.keeper_role;
    save_config(dir, config);

    AdoptedNode adopted;
    adopted.node_id = reg.node_id;
    adopted.name = reg.node_name;
    adopted.group_id = reg.group_id;
    adopted.reported_state = std::string(to_string(state.current_state));
    adopted.goal_state = std::string(to_string(reg.goal));
    if (auto pid = live_pid_in(pid_path(dir)); pid && ::kill(static_cast<pid_t>(*pid), SIGHUP) == 0)
        adopted.keeper_signalled = true;
    log_info("node={} state={} adopted by the new monitor {} (goal {}){}", adopted.name, adopted.reported_state,
             support::redact_conninfo(config.monitor_uri), adopted.goal_state,
             adopted.keeper_signalled ? "; the running keeper reloads keeper.json" : "");
    return adopted;
}

}  // namespace autofailover::keeper
