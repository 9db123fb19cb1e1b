#include "keeper/http_endpoint.h"

#include "libautofailover/lsn.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>
#include <stdexcept>

namespace autofailover::keeper {
namespace {

double seconds_between(TimePoint later, TimePoint earlier) {
    return std::chrono::duration<double>(later - earlier).count();
}

}  // namespace

HttpEndpoint::HttpEndpoint(const std::string& host, int port, int threads, std::chrono::milliseconds io_timeout,
                           std::chrono::milliseconds liveness_bound)
    : liveness_bound_(liveness_bound), server_(std::make_unique<httplib::Server>()) {
    auto& s = *server_;
    // Bounded: a fixed pool (httplib takes ownership of the queue it is given) and
    // short socket timeouts, so slow or idle clients cannot pile up threads.
    s.new_task_queue = [threads] { return std::make_unique<httplib::ThreadPool>(static_cast<size_t>(threads)).release(); };
    const auto secs = static_cast<time_t>(io_timeout.count() / 1000);
    const auto usecs = static_cast<time_t>((io_timeout.count() % 1000) * 1000);
    s.set_read_timeout(secs, usecs);
    s.set_write_timeout(secs, usecs);
    s.set_keep_alive_timeout(secs > 0 ? secs : 1);
    s.set_keep_alive_max_count(10);
    s.set_payload_max_length(1024);

    auto role = [this](const httplib::Request& req, httplib::Response& res) {
        const auto o = snapshot();
        std::optional<LagBound> bound;
        if (req.has_param("lag")) {
            bound = parse_lag_bound(req.get_param_value("lag"));
            if (!bound) {
                res.status = 400;
                res.set_content("bad lag bound: use bytes (16MB) or a duration (5s, 500ms)\n", "text/plain");
                return;
            }
        }
        res.status = endpoint_status(req.path, o, bound, Clock::now(), liveness_bound_);
        res.set_content(std::string(to_string(o.reported)) + "\n", "text/plain");
    };
    for (const char* path : {"/primary", "/replica", "/read-only", "/health", "/liveness", "/readiness"})
        s.Get(path, role);
    s.Get("/state", [this](const httplib::Request&, httplib::Response& res) {
        const auto o = snapshot();
        res.set_content(state_json(o, Clock::now()), "application/json");
    });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        const auto o = snapshot();
        res.set_content(metrics_text(o, Clock::now()), "text/plain; version=0.0.4");
    });
    if (!s.bind_to_port(host.c_str(), port))
        throw std::runtime_error(fmt::format("cannot listen for HTTP on {}:{}", host, port));
    thread_ = std::thread([&s] { s.listen_after_bind(); });
}

HttpEndpoint::~HttpEndpoint() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
}

void HttpEndpoint::publish(const NodeObservation& o) {
    std::lock_guard<std::mutex> lock(mutex_);
    last_ = o;
}

NodeObservation HttpEndpoint::snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
}

std::string HttpEndpoint::state_json(const NodeObservation& o, TimePoint now) const {
    nlohmann::json j{
        {"node", o.node},
        {"formation", o.formation},
        {"reported_state", to_string(o.reported)},
        {"goal_state", to_string(o.goal)},
        {"postgres_running", o.pg_running},
        {"postgres_accepting", o.pg_accepting},
        {"in_recovery", o.in_recovery},
        {"streaming", o.wal_receiver_streaming},
        {"lsn", format_lsn(o.lsn)},
        {"fenced", o.fenced},
        {"writable", serves_writes(o, now)},
        {"observation_age_s", o.published ? nlohmann::json(seconds_between(now, o.observed_at)) : nlohmann::json()},
    };
    j["lag_bytes"] = o.lag_bytes ? nlohmann::json(*o.lag_bytes) : nlohmann::json();
    j["replay_lag_s"] = o.replay_lag ? nlohmann::json(o.replay_lag->count() / 1000.0) : nlohmann::json();
    j["lease_left_s"] = o.lease_deadline ? nlohmann::json(seconds_between(*o.lease_deadline, now)) : nlohmann::json();
    j["last_monitor_contact_age_s"] =
        o.last_monitor_contact ? nlohmann::json(seconds_between(now, *o.last_monitor_contact)) : nlohmann::json();
    return j.dump(2) + "\n";
}

std::string HttpEndpoint::metrics_text(const NodeObservation& o, TimePoint now) const {
    const std::string labels = fmt::format("node=\"{}\",formation=\"{}\"", o.node, o.formation);
    std::string out;
    auto gauge = [&](const char* name, const char* help, double value, const std::string& extra = "") {
        out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{}{{{}{}}} {}\n", name, help, name, name, labels, extra, value);
    };
    gauge("autofailover_keeper_up", "1 while the keeper loop published an observation within the liveness bound",
          o.published && now - o.observed_at <= liveness_bound_ ? 1 : 0);
    gauge("autofailover_keeper_postgres_up", "1 while the local Postgres answers SQL", o.pg_accepting ? 1 : 0);
    gauge("autofailover_keeper_writable", "1 while this node serves writes (primary, live write lease)",
          serves_writes(o, now) ? 1 : 0);
    gauge("autofailover_keeper_streaming", "1 while this standby's walreceiver streams",
          o.wal_receiver_streaming ? 1 : 0);
    gauge("autofailover_keeper_fenced", "1 while this node fenced itself", o.fenced ? 1 : 0);
    gauge("autofailover_keeper_state_info", "reported and goal state of this node", 1,
          fmt::format(",reported=\"{}\",goal=\"{}\"", to_string(o.reported), to_string(o.goal)));
    gauge("autofailover_keeper_lsn_bytes", "WAL position of this node", static_cast<double>(o.lsn));
    if (o.lag_bytes)
        gauge("autofailover_keeper_replication_lag_bytes", "bytes this standby is behind the primary",
              static_cast<double>(*o.lag_bytes));
    if (o.replay_lag)
        gauge("autofailover_keeper_replay_lag_seconds",
              "how stale this standby's replayed data may be (0 while all received WAL is replayed)",
              o.replay_lag->count() / 1000.0);
    if (o.lease_deadline)
        gauge("autofailover_keeper_write_lease_remaining_seconds", "time until this primary must stop writes",
              seconds_between(*o.lease_deadline, now));
    if (o.last_monitor_contact)
        gauge("autofailover_keeper_last_monitor_contact_age_seconds", "time since the monitor last answered",
              seconds_between(now, *o.last_monitor_contact));
    if (o.published)
        gauge("autofailover_keeper_observation_age_seconds", "time since the keeper loop last observed",
              seconds_between(now, o.observed_at));
    return out;
}

}  // namespace autofailover::keeper
