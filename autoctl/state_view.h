// How monitor answers are shown to people (aligned text tables) and to
// programs (--json, nlohmann_json).
#pragma once

#include "autoctl/monitor_client.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace autoctl {

// "16/B374D848" -> its 64-bit position; nullopt when malformed.
std::optional<unsigned long long> parse_lsn(const std::string& text);
// Bytes of WAL between the group's primary (reported and goal writable) and `node`, from their last reports
// on the same timeline; nullopt for the primary itself, without a primary, or across timelines.
std::optional<unsigned long long> lag_bytes(const std::vector<NodeRow>& nodes, const NodeRow& node);
// 1536 -> "1.5 kB" (binary units).
std::string format_bytes(unsigned long long bytes);

std::string render_state_table(const std::vector<NodeRow>& nodes);
nlohmann::json state_to_json(const std::vector<NodeRow>& nodes);

std::string render_events_table(const std::vector<EventRow>& events);
nlohmann::json events_to_json(const std::vector<EventRow>& events);

std::string render_settings_table(const std::vector<std::pair<std::string, std::string>>& settings);
nlohmann::json settings_to_json(const std::vector<std::pair<std::string, std::string>>& settings);

// "node_2: secondary -> prepare_promotion (reason)" from a NOTIFY payload on
// autofailover_state; payloads that are not JSON are shown as they are.
std::string describe_state_notification(const std::string& payload);

// Left-aligned columns separated by two spaces, with a dashed line under the header.
std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace autoctl
