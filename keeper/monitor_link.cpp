#include "keeper/monitor_link.h"

#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "support/conninfo.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <poll.h>
#include <set>
#include <thread>

namespace autofailover::keeper {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string one_line(const char* message) {
    std::string s = message ? message : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (auto& c : s)
        if (c == '\n') c = ' ';
    return s;
}

std::optional<std::string> opt(const std::string& s) { return s; }

int to_int(const std::optional<std::string>& s, int fallback = 0) { return s ? std::stoi(*s) : fallback; }
bool to_bool(const std::optional<std::string>& s) { return s && (*s == "t" || *s == "true"); }
std::optional<Lsn> to_lsn(const std::optional<std::string>& s) {
    if (!s) return std::nullopt;
    return parse_lsn(*s);
}
NodeState to_state(const std::optional<std::string>& s) {
    if (!s) throw MonitorRefused("monitor returned no state");
    auto parsed = parse_node_state(*s);
    if (!parsed) throw MonitorRefused("monitor returned unknown state " + *s);
    return *parsed;
}

// Array literals of the streaming standbys: {2,5} and {0/3000060,0/3000060}.
std::string streaming_ids_literal(const std::vector<StreamingStandbyReport>& standbys) {
    std::string out = "{";
    for (const auto& s : standbys) out += (out.size() > 1 ? "," : "") + std::to_string(s.node_id);
    return out + "}";
}
std::string streaming_lsns_literal(const std::vector<StreamingStandbyReport>& standbys) {
    std::string out = "{";
    for (const auto& s : standbys) out += (out.size() > 1 ? "," : "") + format_lsn(s.flush_lsn);
    return out + "}";
}

}  // namespace

void MonitorLink::ConnDeleter::operator()(pg_conn* conn) const { PQfinish(conn); }

MonitorLink::MonitorLink(MonitorLogin login, std::chrono::milliseconds call_timeout)
    : login_(std::move(login)), call_timeout_(call_timeout) {}

MonitorLink::~MonitorLink() = default;

void MonitorLink::disconnect() {
    conn_.reset();
    listening_ = false;
}

void MonitorLink::disconnect_and_try_next_host() {
    disconnect();
    ++host_rotation_;
}

// Returns only once the socket is ready (or in error): libpq, called on a socket that is not, may block in a
// send of its own with no timeout (PQconnectPoll on a connection still in progress, see connect). A signal
// does not end the wait: its flag is looked at when the call returns, at most call_timeout later.
void MonitorLink::wait_socket(bool for_write, SteadyClock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
        if (left <= 0)
            throw MonitorUnreachable("monitor did not answer within " + std::to_string(call_timeout_.count()) + " ms");
        pollfd p{PQsocket(conn_.get()), static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n > 0) return;
        if (n == 0)
            throw MonitorUnreachable("monitor did not answer within " + std::to_string(call_timeout_.count()) + " ms");
        if (errno != EINTR) throw MonitorUnreachable("poll on the monitor connection failed");
    }
}

namespace {

std::vector<std::string> split_commas(const std::string& list) {
    std::vector<std::string> items;
    std::size_t start = 0;
    for (;;) {
        auto comma = list.find(',', start);
        items.push_back(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

// A multi-host list (host, hostaddr or port) starting from its entry `by` (modulo its length); a single
// entry, which libpq applies to every host, stays as it is.
std::string rotate_list(const std::string& list, std::size_t by) {
    auto items = split_commas(list);
    if (items.size() < 2) return list;
    std::rotate(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(by % items.size()), items.end());
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
    return out;
}

std::vector<std::pair<std::string, std::string>> connection_options(const MonitorLogin& login, std::size_t rotation) {
    char* error = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> parsed(PQconninfoParse(login.uri.c_str(), &error),
                                                                      &PQconninfoFree);
    if (!parsed) {
        std::string message = error ? one_line(error) : "out of memory";
        PQfreemem(error);
        throw MonitorUnreachable("invalid monitor URI " + support::redact_conninfo(login.uri) + ": " + message);
    }
    static const std::set<std::string> ours = {"application_name", "keepalives", "keepalives_idle",
                                               "keepalives_interval", "keepalives_count"};
    std::vector<std::pair<std::string, std::string>> options;
    for (const PQconninfoOption* o = parsed.get(); o->keyword != nullptr; ++o) {
        if (o->val == nullptr || *o->val == '\0' || ours.count(o->keyword)) continue;
        const std::string keyword = o->keyword;
        // The URI's password belongs to the URI's user (the bootstrap role): never sent as another.
        if (!login.user.empty() && (keyword == "user" || keyword == "password" || keyword == "passfile")) continue;
        const bool host_list = keyword == "host" || keyword == "hostaddr" || keyword == "port";
        options.emplace_back(keyword, host_list ? rotate_list(o->val, rotation) : std::string(o->val));
    }
    if (!login.user.empty()) options.emplace_back("user", login.user);
    if (!login.passfile.empty()) options.emplace_back("passfile", login.passfile);
    options.emplace_back("application_name", "autofailover_keeper");
    options.emplace_back("keepalives_idle", "2");
    options.emplace_back("keepalives_interval", "1");
    options.emplace_back("keepalives_count", "2");
    return options;
}

}  // namespace

void MonitorLink::connect(SteadyClock::time_point deadline) {
    const auto options = connection_options(login_, host_rotation_);
    std::vector<const char*> keywords;
    std::vector<const char*> values;
    for (const auto& [keyword, value] : options) {
        keywords.push_back(keyword.c_str());
        values.push_back(value.c_str());
    }
    keywords.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectStartParams(keywords.data(), values.data(), 0));
    if (!conn_) throw MonitorUnreachable("out of memory connecting to the monitor");
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
        std::string message = one_line(PQerrorMessage(conn_.get()));
        conn_.reset();
        ++host_rotation_;
        throw MonitorUnreachable("cannot connect to the monitor " + support::redact_conninfo(login_.uri) + ": " + message);
    }
    try {
        // PQconnectStartParams left the TCP connect in progress: libpq's protocol is to wait for the socket
        // to be writable before the first PQconnectPoll. Called earlier, it takes the connection for made and
        // sends its first packet in blocking mode, which on a host that drops packets waits for TCP's own
        // timeout (a minute or more; netns row M6: keepers stuck 80 s, the primary's write lease lapsed).
        PostgresPollingStatusType status = PGRES_POLLING_WRITING;
        for (;;) {
            wait_socket(status == PGRES_POLLING_WRITING, deadline);
            status = PQconnectPoll(conn_.get());
            if (status == PGRES_POLLING_OK) break;
            if (status == PGRES_POLLING_FAILED)
                throw MonitorUnreachable("cannot connect to the monitor " + support::redact_conninfo(login_.uri) + ": " +
                                         one_line(PQerrorMessage(conn_.get())));
        }
        PQsetnonblocking(conn_.get(), 1);
        // Server notices (e.g. "terminating connection due to immediate shutdown") are
        // not ours to print raw; the failure they precede is logged where handled.
        PQsetNoticeProcessor(conn_.get(), [](void*, const char* message) { log_debug("monitor notice: {}", message); },
                             nullptr);
    } catch (...) {
        conn_.reset();
        // A crashed monitor host drops packets: libpq would wait on it for the TCP timeout (its connect_timeout
        // does not apply to PQconnectPoll) and never reach the next host of the URI within our deadline. The
        // next attempt starts from the next host (a no-op with one host).
        ++host_rotation_;
        throw;
    }
    listening_ = false;
}

std::vector<MonitorLink::Row> MonitorLink::call(const std::string& sql,
                                                const std::vector<std::optional<std::string>>& params) {
    const auto deadline = SteadyClock::now() + call_timeout_;
    if (conn_ && PQstatus(conn_.get()) != CONNECTION_OK) disconnect();
    if (!conn_) connect(deadline);
    bool query_sent = false;
    try {
        if (want_listen_ && !listening_) {
            // Simple query first so a NOTIFY sent while we were away is not missed for long.
            if (!PQsendQuery(conn_.get(), "LISTEN autofailover_state")) throw MonitorUnreachable(one_line(PQerrorMessage(conn_.get())));
            for (;;) {
                while (PQflush(conn_.get()) == 1) wait_socket(true, deadline);
                while (PQisBusy(conn_.get())) {
                    wait_socket(false, deadline);
                    if (!PQconsumeInput(conn_.get())) throw MonitorUnreachable(one_line(PQerrorMessage(conn_.get())));
                }
                Result r(PQgetResult(conn_.get()));
                if (!r) break;
            }
            listening_ = true;
        }
        std::vector<const char*> values;
        for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
        if (!PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                               nullptr, nullptr, 0))
            throw MonitorUnreachable("monitor connection lost: " + one_line(PQerrorMessage(conn_.get())));
        query_sent = true;
        while (PQflush(conn_.get()) == 1) wait_socket(true, deadline);
        std::vector<Row> rows;
        std::string error;
        for (;;) {
            while (PQisBusy(conn_.get())) {
                wait_socket(false, deadline);
                if (!PQconsumeInput(conn_.get()))
                    throw MonitorUnreachable("monitor connection lost: " + one_line(PQerrorMessage(conn_.get())));
            }
            Result r(PQgetResult(conn_.get()));
            if (!r) break;
            auto status = PQresultStatus(r.get());
            if (status == PGRES_TUPLES_OK) {
                for (int i = 0; i < PQntuples(r.get()); ++i) {
                    Row row;
                    for (int c = 0; c < PQnfields(r.get()); ++c)
                        row.push_back(PQgetisnull(r.get(), i, c) ? std::nullopt
                                                                 : std::optional<std::string>(PQgetvalue(r.get(), i, c)));
                    rows.push_back(std::move(row));
                }
            } else if (status != PGRES_COMMAND_OK) {
                // The primary message and the hint say what to do; LINE/caret context does not.
                const char* primary = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY);
                const char* hint = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_HINT);
                error = primary ? one_line(primary) : one_line(PQresultErrorMessage(r.get()));
                if (hint) error += " (" + one_line(hint) + ")";
            }
        }
        if (PQstatus(conn_.get()) != CONNECTION_OK) throw MonitorUnreachable("monitor connection lost: " + error);
        if (!error.empty()) throw MonitorRefused(error);
        return rows;
    } catch (const MonitorUnreachable&) {
        // A query left running would keep its backend (and any lock it waits for) after we give up.
        if (query_sent) cancel_query_in_flight();
        disconnect();
        ++host_rotation_;  // the host may be gone: reconnect starting from the next one (see connect)
        throw;
    }
}

void MonitorLink::cancel_query_in_flight() {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK || cancel_under_way_->load()) return;
    std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> cancel(PQgetCancel(conn_.get()), &PQfreeCancel);
    if (!cancel) return;
    cancel_under_way_->store(true);
    // Detached: the request may wait on a dead network far longer than the loop may.
    std::thread([cancel = std::move(cancel), under_way = cancel_under_way_]() {
        char error[256];
        // A failed cancel needs no report: the server ends the statement itself (docs/security.md).
        PQcancel(cancel.get(), error, sizeof error);
        under_way->store(false);
    }).detach();
}

namespace {

// node_id, node_name, group_id, goal_state, keeper_role, keeper_password [, replication_password]:
// the answer of register_node and adopt_node; a node without its own role could not log in again.
Registration registration_from(const std::vector<std::vector<std::optional<std::string>>>& rows, const char* function) {
    if (rows.size() != 1) throw MonitorRefused(std::string(function) + " returned " + std::to_string(rows.size()) + " rows");
    const auto& row = rows[0];
    Registration r;
    r.node_id = std::stoll(row[0].value_or("0"));
    r.node_name = row[1].value_or("");
    r.group_id = to_int(row[2]);
    r.goal = to_state(row[3]);
    r.keeper_role = row[4].value_or("");
    r.keeper_password = row[5].value_or("");
    if (row.size() > 6) r.replication_password = row[6].value_or("");
    if (r.keeper_role.empty() || r.keeper_password.empty())
        throw MonitorRefused(std::string(function) + " returned no keeper role for node " + std::to_string(r.node_id));
    return r;
}

}  // namespace

Registration MonitorLink::register_node(const std::string& formation, const std::string& host, int port,
                                        const std::string& name, std::optional<int> group, int candidate_priority,
                                        bool replication_quorum) {
    auto rows = call(
        "SELECT node_id, node_name, group_id, goal_state, keeper_role, keeper_password, replication_password "
        "FROM autofailover.register_node($1, $2, $3::int, $4, $5::int, $6::int, $7::bool)",
        {formation, host, std::to_string(port), name.empty() ? std::nullopt : opt(name),
         group ? opt(std::to_string(*group)) : std::nullopt, std::to_string(candidate_priority),
         replication_quorum ? "true" : "false"});
    return registration_from(rows, "register_node");
}

NodeAssignment MonitorLink::node_active(const std::string& formation, std::int64_t node_id, const NodeReport& report) {
    auto rows = call(
        "SELECT goal_state, candidate_priority, replication_quorum, primary_node_id, primary_host, primary_port, "
        "synchronous_standby_names, upstream_host, upstream_port, upstream_lsn, network_partition_timeout_ms, "
        "monitor_leads, client_access_version "
        "FROM autofailover.node_active($1, $2::bigint, $3::autofailover.node_state, $4::bool, $5::int, "
        "$6::pg_lsn, $7, $8::bigint[], $9::pg_lsn[])",
        {formation, std::to_string(node_id), std::string(to_string(report.reported_state)),
         report.pg_is_running ? "true" : "false", std::to_string(report.timeline), format_lsn(report.lsn),
         report.sync_state, streaming_ids_literal(report.streaming_standbys),
         streaming_lsns_literal(report.streaming_standbys)});
    if (rows.size() != 1) throw MonitorRefused("node_active returned " + std::to_string(rows.size()) + " rows");
    const auto& row = rows[0];
    NodeAssignment a;
    a.goal = to_state(row[0]);
    a.candidate_priority = to_int(row[1], 50);
    a.replication_quorum = to_bool(row[2]);
    if (row[3]) a.primary_node_id = std::stoll(*row[3]);
    a.primary_host = row[4].value_or("");
    a.primary_port = to_int(row[5]);
    a.synchronous_standby_names = row[6].value_or("");
    a.upstream_host = row[7].value_or("");
    a.upstream_port = to_int(row[8]);
    a.upstream_lsn = to_lsn(row[9]);
    if (row[10]) a.network_partition_timeout = std::chrono::milliseconds(std::stoll(*row[10]));
    a.monitor_leads = to_bool(row[11]);
    if (row.size() > 12 && row[12]) a.client_access_version = std::stoll(*row[12]);
    if (!a.monitor_leads) disconnect_and_try_next_host();
    return a;
}

NodeState MonitorLink::report_promotion_veto(const std::string& formation, std::int64_t node_id,
                                             const std::string& reason) {
    auto rows = call("SELECT autofailover.report_promotion_veto($1, $2::bigint, $3)",
                     {formation, std::to_string(node_id), reason});
    if (rows.size() != 1) throw MonitorRefused("report_promotion_veto returned " + std::to_string(rows.size()) + " rows");
    return to_state(rows[0][0]);
}

FormationClients MonitorLink::formation_client_access(const std::string& formation) {
    // As JSON: the keeper parses each network as one string, whatever characters it holds.
    auto rows = call("SELECT version, pg_catalog.array_to_json(networks)::text, client_database, client_role "
                     "FROM autofailover.formation_client_access($1)",
                     {formation});
    if (rows.size() != 1 || !rows[0][0] || !rows[0][1])
        throw MonitorRefused("formation_client_access returned " + std::to_string(rows.size()) + " rows");
    FormationClients f;
    f.version = std::stoll(*rows[0][0]);
    try {
        const auto networks = nlohmann::json::parse(*rows[0][1]);
        if (!networks.is_array() || networks.size() > 64) throw MonitorRefused("formation_client_access: bad networks");
        for (const auto& n : networks) {
            if (!n.is_string()) throw MonitorRefused("formation_client_access: a network is not a string");
            f.networks.push_back(n.get<std::string>());
        }
    } catch (const nlohmann::json::exception& e) {
        throw MonitorRefused(std::string("formation_client_access: ") + e.what());
    }
    f.client_database = rows[0][2].value_or("all");
    f.client_role = rows[0][3].value_or("all");
    return f;
}

std::vector<OtherNode> MonitorLink::get_other_nodes(std::int64_t node_id) {
    auto rows = call("SELECT node_id, node_name, host, port, lsn, is_primary FROM autofailover.get_other_nodes($1::bigint)",
                     {std::to_string(node_id)});
    std::vector<OtherNode> nodes;
    for (const auto& row : rows) {
        OtherNode n;
        n.node_id = std::stoll(row[0].value_or("0"));
        n.name = row[1].value_or("");
        n.host = row[2].value_or("");
        n.port = to_int(row[3]);
        n.lsn = to_lsn(row[4]);
        n.is_primary = to_bool(row[5]);
        nodes.push_back(std::move(n));
    }
    return nodes;
}

void MonitorLink::listen_for_state_changes() { want_listen_ = true; }

bool MonitorLink::wait_for_group_event(const std::string& formation, int group, std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    if (!conn_ || !listening_) {
        auto left = deadline - SteadyClock::now();
        if (left > SteadyClock::duration::zero()) {
            // poll() with no fds: a sleep that a signal interrupts.
            ::poll(nullptr, 0, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
        }
        return false;
    }
    for (;;) {
        bool relevant = false;
        while (PGnotify* n = PQnotifies(conn_.get())) {
            try {
                auto payload = nlohmann::json::parse(n->extra);
                if (payload.value("formation", "") == formation && payload.value("group", -1) == group) relevant = true;
            } catch (const std::exception&) {
                relevant = true;  // unknown payload: better wake up once too often
            }
            PQfreemem(n);
        }
        if (relevant) return true;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
        if (left <= 0) return false;
        pollfd p{PQsocket(conn_.get()), POLLIN, 0};
        int got = ::poll(&p, 1, static_cast<int>(left));
        if (got < 0 && errno == EINTR) return false;  // a signal: let the loop look at it now
        if (got > 0 && !PQconsumeInput(conn_.get())) {
            disconnect();
            return false;
        }
    }
}

Registration MonitorLink::adopt_node(const std::string& formation, std::int64_t node_id, const std::string& name,
                                     const std::string& host, int port, int group, NodeState reported, int timeline,
                                     Lsn lsn, int candidate_priority, bool replication_quorum,
                                     const std::optional<std::string>& system_identifier) {
    auto rows = call(
        "SELECT node_id, node_name, group_id, goal_state, keeper_role, keeper_password "
        "FROM autofailover.adopt_node($1, $2::bigint, $3, $4, $5::int, $6::int, $7::autofailover.node_state, "
        "$8::int, $9::pg_lsn, $10::int, $11::bool, $12::bigint)",
        {formation, std::to_string(node_id), name, host, std::to_string(port), std::to_string(group),
         std::string(to_string(reported)), std::to_string(timeline), format_lsn(lsn),
         std::to_string(candidate_priority), replication_quorum ? "true" : "false", system_identifier});
    return registration_from(rows, "adopt_node");
}

std::string monitor_version_mismatch(const std::optional<std::string>& library,
                                     const std::optional<std::string>& installed) {
    if (library && installed && *library == *installed) return "";
    return fmt::format("the monitor's autofailover library is version {} but its installed extension is version {}: "
                       "its C functions refuse to run until they match (install the matching library, or ALTER "
                       "EXTENSION autofailover UPDATE, then restart the monitor)",
                       library.value_or("?"), installed.value_or("?"));
}

std::string MonitorLink::version_mismatch() {
    try {
        const auto rows = call(kMonitorVersionsQuery, {});
        if (rows.size() != 1 || rows[0].size() != 2) return "the monitor's version check returned no row";
        return monitor_version_mismatch(rows[0][0], rows[0][1]);
    } catch (const MonitorRefused& e) {
        // No library_version(): the SQL predates the library, or the library the SQL.
        return std::string("the monitor's version check failed (library and SQL of different versions?): ") + e.what();
    }
}

}  // namespace autofailover::keeper
