#include "keeper/node_observation.h"

#include <algorithm>
#include <regex>

namespace autofailover::keeper {

std::optional<LagBound> parse_lag_bound(const std::string& text) {
    static const std::regex re(R"((\d{1,15})\s*(B|kB|MB|GB|ms|s|min)?)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return std::nullopt;
    const std::int64_t n = std::stoll(m[1].str());
    const std::string unit = m[2].str();
    LagBound b;
    if (unit == "ms") b.duration = std::chrono::milliseconds(n);
    else if (unit == "s") b.duration = std::chrono::milliseconds(n * 1000);
    else if (unit == "min") b.duration = std::chrono::milliseconds(n * 60000);
    else if (unit == "kB") b.bytes = n * 1024;
    else if (unit == "MB") b.bytes = n * 1024 * 1024;
    else if (unit == "GB") b.bytes = n * 1024 * 1024 * 1024;
    else b.bytes = n;
    return b;
}

std::optional<std::chrono::milliseconds> replay_time_lag(bool caught_up,
                                                         std::optional<std::chrono::milliseconds> last_commit_age,
                                                         std::optional<std::chrono::milliseconds> since_caught_up) {
    if (caught_up) return std::chrono::milliseconds(0);
    if (last_commit_age && since_caught_up) return std::min(*last_commit_age, *since_caught_up);
    if (last_commit_age) return last_commit_age;
    return since_caught_up;
}

bool serves_writes(const NodeObservation& o, TimePoint now) {
    if (!o.published || o.fenced || !o.pg_accepting || o.in_recovery) return false;
    // The goal too: a primary told to drain or demote stops advertising at once.
    if (!is_writable(o.reported) || !is_writable(o.goal)) return false;
    return !o.lease_deadline || now < *o.lease_deadline;
}

bool serves_reads_as_replica(const NodeObservation& o, const std::optional<LagBound>& bound) {
    if (!o.published || !o.pg_accepting || !o.in_recovery || !o.wal_receiver_streaming) return false;
    if (o.reported != NodeState::Secondary && o.reported != NodeState::Catchingup) return false;
    if (!bound) return true;
    // An unknown lag fails closed.
    if (bound->duration) return o.replay_lag && *o.replay_lag <= *bound->duration;
    return o.lag_bytes && *o.lag_bytes <= *bound->bytes;
}

int endpoint_status(const std::string& path, const NodeObservation& o, const std::optional<LagBound>& bound,
                    TimePoint now, std::chrono::milliseconds liveness_bound) {
    auto code = [](bool ok) { return ok ? 200 : 503; };
    const bool live = o.published && now - o.observed_at <= liveness_bound;
    if (path == "/primary") return code(live && serves_writes(o, now));
    if (path == "/replica") return code(live && serves_reads_as_replica(o, bound));
    if (path == "/read-only")
        return code(live && (serves_writes(o, now) || serves_reads_as_replica(o, bound)));
    if (path == "/health") return code(o.published && o.pg_running && o.pg_accepting);
    if (path == "/liveness") return code(live);
    if (path == "/readiness")
        return code(live && o.pg_accepting && (serves_writes(o, now) || serves_reads_as_replica(o, std::nullopt)));
    return 404;
}

}  // namespace autofailover::keeper
