#include "keeper/keeper_state.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace autofailover::keeper {
namespace {

using Json = nlohmann::json;

Json time_to_json(const std::optional<TimePoint>& t) {
    if (!t) return nullptr;
    return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

std::optional<TimePoint> time_from_json(const Json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(it->get<long long>())));
}

NodeState state_from(const Json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return NodeState::Init;
    auto text = it->get<std::string>();
    auto parsed = parse_node_state(text);
    if (!parsed) throw std::runtime_error("state.json: unknown state \"" + text + "\" in " + key);
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
    };
    return j.dump(2) + "\n";
}

KeeperState state_from_json(const std::string& text) {
    KeeperState s;
    try {
        Json j = Json::parse(text);
        if (!j.is_object()) throw std::runtime_error("state.json: expected a JSON object");
        s.node_id = j.value("node_id", std::int64_t{0});
        s.group_id = j.value("group_id", 0);
        s.current_state = state_from(j, "current_state");
        s.goal_state = state_from(j, "goal_state");
        s.last_monitor_contact = time_from_json(j, "last_monitor_contact_ms");
        s.last_standby_contact = time_from_json(j, "last_standby_contact_ms");
        s.network_partition_timeout =
            std::chrono::milliseconds(j.value("network_partition_timeout_ms", s.network_partition_timeout.count()));
        s.fenced_at = time_from_json(j, "fenced_at_ms");
        s.dropped = j.value("dropped", false);
        s.rejoin_needs_base_backup = j.value("rejoin_needs_base_backup", false);
    } catch (const Json::exception& e) {
        throw std::runtime_error(std::string("state.json is malformed: ") + e.what());
    }
    return s;
}

}  // namespace autofailover::keeper
