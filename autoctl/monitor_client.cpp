#include "autoctl/monitor_client.h"

#include "autoctl/exit_codes.h"
#include "keeper/keeper.h"
#include "keeper/monitor_link.h"
#include "support/conninfo.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>


namespace autoctl {

std::string redact_uri(const std::string& uri) {
    // One redactor for keeper and autoctl: it knows libpq's quoting, so no part of a password is left.
    return autofailover::support::redact_conninfo(uri);
}

class MonitorClient::StateReceiver : public pqxx::notification_receiver {
public:
    StateReceiver(pqxx::connection_base& conn, std::vector<std::string>& sink)
        : pqxx::notification_receiver(conn, "autofailover_state"), sink_(sink) {}
    void operator()(const std::string& payload, int /*backend_pid*/) override { sink_.push_back(payload); }

private:
    std::vector<std::string>& sink_;
};

MonitorClient::MonitorClient(const std::string& uri) : redacted_uri_(redact_uri(uri)) {
    try {
        conn_ = std::make_unique<pqxx::connection>(uri);
    } catch (const std::exception& e) {
        throw CliError(ExitCode::MonitorError,
                       fmt::format("cannot connect to the monitor at {}: {}\n"
                                   "Check that the monitor is running and that --monitor (or AUTOFAILOVER_MONITOR) "
                                   "names it with a role allowed by its pg_hba.conf.",
                                   redacted_uri_, e.what()));
    }
    warn_on_version_mismatch();
}

// A monitor whose library and installed SQL differ refuses its C functions: warn first.
void MonitorClient::warn_on_version_mismatch() {
    std::string mismatch;
    try {
        pqxx::nontransaction tx(*conn_);
        const auto row = tx.exec1(autofailover::keeper::kMonitorVersionsQuery);
        mismatch = autofailover::keeper::monitor_version_mismatch(
            row[0].is_null() ? std::nullopt : std::optional<std::string>(row[0].c_str()),
            row[1].is_null() ? std::nullopt : std::optional<std::string>(row[1].c_str()));
    } catch (const pqxx::insufficient_privilege&) {
        return;  // a role that may not run it gets its refusals from the command itself
    } catch (const pqxx::sql_error& e) {
        mismatch = std::string("the monitor's version check failed (library and SQL of different versions?): ") +
                   e.what();
    }
    if (!mismatch.empty()) std::cerr << "autoctl: warning: " << mismatch << "\n";
}

MonitorClient::~MonitorClient() = default;

template <typename Fn>
auto MonitorClient::guarded(const char* what, Fn&& fn) {
    try {
        return fn();
    } catch (const pqxx::broken_connection& e) {
        throw CliError(ExitCode::MonitorError,
                       fmt::format("lost the connection to the monitor at {} during {}: {}", redacted_uri_, what,
                                   e.what()));
    } catch (const pqxx::insufficient_privilege& e) {
        throw CliError(ExitCode::MonitorError,
                       fmt::format("the monitor refused {}: {}\nConnect as a role that is a member of "
                                   "autofailover_operator (autoctl create monitor grants it to the OS user "
                                   "that created the monitor).",
                                   what, e.what()));
    } catch (const pqxx::undefined_function& e) {
        throw CliError(ExitCode::MonitorError,
                       fmt::format("the monitor at {} lacks {}: {}\nIs the autofailover extension installed "
                                   "there (CREATE EXTENSION autofailover) and up to date?",
                                   redacted_uri_, what, e.what()));
    } catch (const pqxx::sql_error& e) {
        std::string message = e.what();
        // PL/pgSQL call stacks help the monitor's developers, not the operator.
        if (auto context = message.find("\nCONTEXT:"); context != std::string::npos) message.erase(context);
        while (!message.empty() && message.back() == '\n') message.pop_back();
        throw CliError(ExitCode::MonitorError, fmt::format("the monitor refused {}: {}", what, message));
    } catch (const pqxx::failure& e) {
        throw CliError(ExitCode::MonitorError, fmt::format("talking to the monitor ({}) failed: {}", what, e.what()));
    }
}

std::vector<NodeRow> MonitorClient::current_state(const std::string& formation) {
    return guarded("current_state", [&] {
        pqxx::nontransaction tx(*conn_);
        pqxx::result r = tx.exec_params(
            "SELECT node_id, node_name, group_id, host, port, reported_state::text, goal_state::text, timeline, "
            "lsn::text, health, pg_is_running, "
            "extract(epoch FROM clock_timestamp() - keeper_last_report)::float8, keeper_reporting, "
            "candidate_priority, replication_quorum, sync_state, waiting_reason "
            "FROM autofailover.current_state($1) ORDER BY group_id, node_id",
            formation);
        std::vector<NodeRow> rows;
        for (const auto& f : r) {
            NodeRow n;
            n.node_id = f[0].as<long long>();
            n.name = f[1].as<std::string>("");
            n.group_id = f[2].as<int>(0);
            n.host = f[3].as<std::string>("");
            n.port = f[4].as<int>(0);
            n.reported_state = f[5].as<std::string>("");
            n.goal_state = f[6].as<std::string>("");
            n.timeline = f[7].as<int>(0);
            n.lsn = f[8].as<std::string>("");
            n.health = f[9].as<std::string>("");
            n.pg_is_running = f[10].as<bool>(false);
            if (!f[11].is_null()) n.seconds_since_report = f[11].as<double>();
            n.keeper_reporting = f[12].as<bool>(false);
            n.candidate_priority = f[13].as<int>(0);
            n.replication_quorum = f[14].as<bool>(false);
            n.sync_state = f[15].as<std::string>("");
            n.waiting_reason = f[16].as<std::string>("");
            rows.push_back(std::move(n));
        }
        return rows;
    });
}

std::vector<EventRow> MonitorClient::last_events(const std::string& formation, int count) {
    return guarded("last_events", [&] {
        pqxx::nontransaction tx(*conn_);
        pqxx::result r = tx.exec_params(
            "SELECT event_id, event_time::text, node_id, node_name, group_id, reported_state::text, "
            "goal_state::text, description FROM autofailover.last_events($1, $2)",
            formation, count);
        std::vector<EventRow> rows;
        for (const auto& f : r) {
            EventRow e;
            e.event_id = f[0].as<long long>(0);
            e.event_time = f[1].as<std::string>("");
            e.node_id = f[2].as<long long>(0);
            e.node_name = f[3].as<std::string>("");
            e.group_id = f[4].as<int>(0);
            e.reported_state = f[5].as<std::string>("");
            e.goal_state = f[6].as<std::string>("");
            e.description = f[7].as<std::string>("");
            rows.push_back(std::move(e));
        }
        return rows;
    });
}

std::vector<std::pair<std::string, std::string>> MonitorClient::formation_settings(const std::string& formation) {
    return guarded("formation_settings", [&] {
        pqxx::nontransaction tx(*conn_);
        pqxx::result r =
            tx.exec_params("SELECT setting, value FROM autofailover.formation_settings($1)", formation);
        std::vector<std::pair<std::string, std::string>> rows;
        for (const auto& f : r) rows.emplace_back(f[0].as<std::string>(""), f[1].as<std::string>(""));
        return rows;
    });
}

std::string MonitorClient::synchronous_standby_names(const std::string& formation, int group) {
    return guarded("synchronous_standby_names", [&] {
        pqxx::nontransaction tx(*conn_);
        return tx.exec_params1("SELECT autofailover.synchronous_standby_names($1, $2)", formation, group)[0]
            .as<std::string>("");
    });
}

std::string MonitorClient::formation_uri(const std::string& formation, const std::string& sslmode) {
    return guarded("formation_uri", [&] {
        pqxx::nontransaction tx(*conn_);
        return tx.exec_params1("SELECT autofailover.formation_uri($1, $2)", formation, sslmode)[0].as<std::string>("");
    });
}

void MonitorClient::perform_switchover(const std::string& formation, int group) {
    guarded("perform_switchover", [&] {
        pqxx::work tx(*conn_);
        tx.exec_params("SELECT autofailover.perform_switchover($1, $2)", formation, group);
        tx.commit();
        return 0;
    });
}

void MonitorClient::perform_failover(const std::string& formation, int group, bool accept_data_loss) {
    guarded("perform_failover", [&] {
        pqxx::work tx(*conn_);
        tx.exec_params("SELECT autofailover.perform_failover($1, $2, $3)", formation, group, accept_data_loss);
        tx.commit();
        return 0;
    });
}

namespace {
// Operator functions that answer with a bool, in one committed transaction.
template <typename... Args>
bool call_bool(pqxx::connection& conn, const std::string& sql, Args&&... args) {
    pqxx::work tx(conn);
    bool done = tx.exec_params1(sql, std::forward<Args>(args)...)[0].template as<bool>(false);
    tx.commit();
    return done;
}
}  // namespace

bool MonitorClient::perform_promotion(const std::string& formation, const std::string& node_name) {
    return guarded("perform_promotion", [&] {
        return call_bool(*conn_, "SELECT autofailover.perform_promotion($1, $2)", formation, node_name);
    });
}

bool MonitorClient::start_maintenance(const std::string& formation, const std::string& node_name) {
    return guarded("start_maintenance", [&] {
        return call_bool(*conn_, "SELECT autofailover.start_maintenance($1, $2)", formation, node_name);
    });
}

bool MonitorClient::stop_maintenance(const std::string& formation, const std::string& node_name) {
    return guarded("stop_maintenance", [&] {
        return call_bool(*conn_, "SELECT autofailover.stop_maintenance($1, $2)", formation, node_name);
    });
}

bool MonitorClient::set_candidate_priority(const std::string& formation, const std::string& node_name,
                                           int priority) {
    return guarded("set_node_candidate_priority", [&] {
        return call_bool(*conn_, "SELECT autofailover.set_node_candidate_priority($1, $2, $3)", formation,
                         node_name, priority);
    });
}

bool MonitorClient::set_replication_quorum(const std::string& formation, const std::string& node_name,
                                           bool quorum) {
    return guarded("set_node_replication_quorum", [&] {
        return call_bool(*conn_, "SELECT autofailover.set_node_replication_quorum($1, $2, $3)", formation,
                         node_name, quorum);
    });
}

bool MonitorClient::set_number_sync_standbys(const std::string& formation, int number) {
    return guarded("set_formation_number_sync_standbys", [&] {
        return call_bool(*conn_, "SELECT autofailover.set_formation_number_sync_standbys($1, $2)", formation,
                         number);
    });
}

long long MonitorClient::set_formation_allow_clients(const std::string& formation,
                                                     const std::vector<std::string>& networks,
                                                     const std::string& client_database,
                                                     const std::string& client_role) {
    return guarded("set_formation_allow_clients", [&] {
        pqxx::nontransaction tx(*conn_);
        // The list travels as one JSON parameter: each network stays one array element, whatever it holds.
        return tx
            .exec_params1("SELECT autofailover.set_formation_allow_clients($1, "
                          "ARRAY(SELECT pg_catalog.json_array_elements_text($2::json)), $3, $4)",
                          formation, nlohmann::json(networks).dump(), client_database, client_role)[0]
            .as<long long>();
    });
}

MonitorClient::FormationClientAccess MonitorClient::formation_client_access(const std::string& formation) {
    return guarded("formation_client_access", [&] {
        pqxx::nontransaction tx(*conn_);
        auto row = tx.exec_params1("SELECT version, pg_catalog.array_to_json(networks)::text, client_database, "
                                   "client_role FROM autofailover.formation_client_access($1)",
                                   formation);
        FormationClientAccess a;
        a.version = row[0].as<long long>(0);
        for (const auto& n : nlohmann::json::parse(row[1].as<std::string>("[]")))
            if (n.is_string()) a.networks.push_back(n.get<std::string>());
        a.client_database = row[2].as<std::string>("all");
        a.client_role = row[3].as<std::string>("all");
        return a;
    });
}

bool MonitorClient::remove_node_by_name(const std::string& formation, const std::string& node_name, bool force) {
    return guarded("remove_node_by_name", [&] {
        return call_bool(*conn_, "SELECT autofailover.remove_node_by_name($1, $2, $3)", formation, node_name,
                         force);
    });
}

void MonitorClient::listen_for_state_changes() {
    guarded("LISTEN autofailover_state", [&] {
        receiver_ = std::make_unique<StateReceiver>(*conn_, pending_);
        return 0;
    });
}

std::vector<std::string> MonitorClient::wait_for_notifications(std::chrono::milliseconds timeout) {
    return guarded("waiting for notifications", [&] {
        if (conn_->get_notifs() == 0 && timeout.count() > 0) {
            conn_->await_notification(static_cast<long>(timeout.count() / 1000),
                                      static_cast<long>((timeout.count() % 1000) * 1000));
        }
        std::vector<std::string> out;
        out.swap(pending_);
        return out;
    });
}

std::vector<MetricRow> MonitorClient::metrics(const std::string& formation) {
    return guarded("metrics", [&] {
        pqxx::nontransaction tx(*conn_);
        pqxx::result r = tx.exec_params(
            "SELECT name, labels, value::text, type, help FROM autofailover.metrics(nullif($1, ''))", formation);
        std::vector<MetricRow> rows;
        for (const auto& f : r)
            rows.push_back({f[0].as<std::string>(""), f[1].as<std::string>(""), f[2].as<std::string>("NaN"),
                            f[3].as<std::string>(""), f[4].as<std::string>("")});
        return rows;
    });
}

std::vector<PlanRow> MonitorClient::plan_operation(const std::string& command, const std::string& formation,
                                                   int group, const std::string& node_name, bool accept_data_loss) {
    return guarded("plan_operation", [&] {
        // Read only: the dry run cannot change anything. Repeatable read: every query of the
        // monitor's function sees the same snapshot, as the real command does under its lock.
        pqxx::work tx(*conn_);
        tx.exec0("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        pqxx::result r = tx.exec_params(
            "SELECT node_id, node_name, reported_state::text, goal_state::text, planned_goal_state, reason, "
            "timeline, lsn::text, is_primary, lsn_behind_primary::text, would_be_promoted, waiting_reason, "
            "would_wait_ms, would_wait_for "
            "FROM autofailover.plan_operation($1, $2, $3, nullif($4, ''), $5)",
            command, formation, group, node_name, accept_data_loss);
        std::vector<PlanRow> rows;
        for (const auto& f : r) {
            PlanRow p;
            p.node_id = f[0].as<long long>(0);
            p.name = f[1].as<std::string>("");
            p.reported_state = f[2].as<std::string>("");
            p.goal_state = f[3].as<std::string>("");
            p.planned_goal = f[4].as<std::string>("");
            p.reason = f[5].as<std::string>("");
            p.timeline = f[6].as<int>(0);
            p.lsn = f[7].as<std::string>("");
            p.is_primary = f[8].as<bool>(false);
            if (!f[9].is_null()) p.behind_primary = std::stoull(f[9].as<std::string>());
            p.would_be_promoted = f[10].as<bool>(false);
            p.waiting_reason = f[11].as<std::string>("");
            p.would_wait_ms = f[12].as<long long>(0);
            p.would_wait_for = f[13].as<std::string>("");
            rows.push_back(std::move(p));
        }
        tx.commit();
        return rows;
    });
}

}  // namespace autoctl
