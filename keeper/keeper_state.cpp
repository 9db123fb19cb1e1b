#include "keeper/keeper_state.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>

namespace autofailover::keeper {
namespace {

using Json = nlohmann::json;

// Times are milliseconds since the epoch; beyond 2200-01-01 a clock (nanoseconds in 64 bits)
// would overflow, so such a value is corruption, not a time.
constexpr long long kLatestTimeMs = 7258118400000LL;

[[noreturn]] void bad(const std::string& key, const std::string& what) {
    throw std::runtime_error("state.json: \"" + key + "\" " + what);
}

// An integer in [min, max]; floats, fractions and huge values are refused, never cast.
long long integer(const Json& j, const char* key, long long fallback, long long min, long long max) {
    auto it = j.find(key);
    if (it == j.end()) return fallback;
    const std::string range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    long long value = 0;
    if (it->is_number_unsigned()) {
        const auto u = it->get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(max)) bad(key, range + " (got " + it->dump() + ")");
        value = static_cast<long long>(u);
    } else if (it->is_number_integer()) {
        value = it->get<std::int64_t>();
    } else {
        bad(key, range + " (got " + it->dump().substr(0, 40) + ")");
    }
    if (value < min || value > max) bad(key, range + " (got " + std::to_string(value) + ")");
    return value;
}

bool boolean(const Json& j, const char* key, bool fallback) {
    auto it = j.find(key);
    if (it == j.end()) return fallback;
    if (!it->is_boolean()) bad(key, "must be true or false");
    return it->get<bool>();
}

Json time_to_json(const std::optional<TimePoint>& t) {
    if (!t) return nullptr;
    return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

std::optional<TimePoint> time_from_json(const Json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    const long long ms = integer(j, key, 0, 0, kLatestTimeMs);
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

NodeState state_from(const Json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return NodeState::Init;
    if (!it->is_string()) bad(key, "must be a state name such as \"secondary\"");
    auto text = it->get<std::string>();
    auto parsed = parse_node_state(text);
    if (!parsed) throw std::runtime_error("state.json: unknown state \"" + text.substr(0, 40) + "\" in " + key);
    return *parsed;
}

}  // namespace

std::string state_to_json(const KeeperState& s) {
    Json j = {
        {"node_id", s.node_id},
        {"group_id", s.group_id},
        {"current_state", std::string(to_string(s.current_state))},
        {"goal_state", std::string(to_string(s.goal_state))},
        {"last_monitor_contact_ms", time_to_json(s.last_monitor_contact)},
        {"last_standby_contact_ms", time_to_json(s.last_standby_contact)},
        {"network_partition_timeout_ms", s.network_partition_timeout.count()},
        {"fenced_at_ms", time_to_json(s.fenced_at)},
        {"dropped", s.dropped},
        {"rejoin_needs_base_backup", s.rejoin_needs_base_backup},
        {"candidate_priority", s.candidate_priority},
        {"replication_quorum", s.replication_quorum},
    };
    j["formation_clients"] = {{"version", s.formation_clients.version},
                              {"networks", s.formation_clients.networks},
                              {"client_database", s.formation_clients.client_database},
                              {"client_role", s.formation_clients.client_role}};
    return j.dump(2) + "\n";
}

KeeperState state_from_json(const std::string& text) {
    KeeperState s;
    Json j;
    try {
        j = Json::parse(text);
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("state.json is malformed: ") + e.what());
    }
    if (!j.is_object()) throw std::runtime_error("state.json: expected a JSON object");
    s.node_id = integer(j, "node_id", 0, 0, std::numeric_limits<std::int64_t>::max());
    s.group_id = static_cast<int>(integer(j, "group_id", 0, 0, std::numeric_limits<int>::max()));
    s.current_state = state_from(j, "current_state");
    s.goal_state = state_from(j, "goal_state");
    s.last_monitor_contact = time_from_json(j, "last_monitor_contact_ms");
    s.last_standby_contact = time_from_json(j, "last_standby_contact_ms");
    // The monitor's value (the GUC autofailover.network_partition_timeout, an int of ms).
    s.network_partition_timeout = std::chrono::milliseconds(integer(
        j, "network_partition_timeout_ms", s.network_partition_timeout.count(), 1, std::numeric_limits<int>::max()));
    s.fenced_at = time_from_json(j, "fenced_at_ms");
    s.dropped = boolean(j, "dropped", false);
    s.rejoin_needs_base_backup = boolean(j, "rejoin_needs_base_backup", false);
    s.candidate_priority = static_cast<int>(integer(j, "candidate_priority", 50, 0, 100));
    s.replication_quorum = boolean(j, "replication_quorum", true);
    if (auto it = j.find("formation_clients"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) bad("formation_clients", "must be an object");
        auto& f = s.formation_clients;
        f.version = integer(*it, "version", 0, 0, std::numeric_limits<std::int64_t>::max());
        if (auto n = it->find("networks"); n != it->end()) {
            if (!n->is_array() || n->size() > 64) bad("formation_clients", "networks must be an array of at most 64");
            for (const auto& item : *n) {
                if (!item.is_string()) bad("formation_clients", "networks must be strings");
                f.networks.push_back(item.get<std::string>());
            }
        }
        for (auto [key, field] : {std::pair<const char*, std::string*>{"client_database", &f.client_database},
                                  std::pair<const char*, std::string*>{"client_role", &f.client_role}}) {
            auto v = it->find(key);
            if (v == it->end()) continue;
            if (!v->is_string()) bad("formation_clients", std::string(key) + " must be a string");
            *field = v->get<std::string>();
        }
    }
    return s;
}

}  // namespace autofailover::keeper
