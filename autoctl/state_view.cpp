#include "autoctl/state_view.h"

#include <fmt/format.h>

#include <algorithm>

namespace autoctl {

std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(header.size(), 0);
    for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());

    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            if (i + 1 == cells.size()) {
                out += cells[i];
            } else {
                out += fmt::format("{:<{}}  ", cells[i], width[i]);
            }
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        return out + "\n";
    };
    std::string out = line(header);
    std::vector<std::string> dashes;
    for (std::size_t w : width) dashes.emplace_back(w, '-');
    out += line(dashes);
    for (const auto& row : rows) out += line(row);
    return out;
}

namespace {

// What a client sees when it connects: read-write, read-only or nothing.
std::string connection_kind(const NodeRow& n) {
    if (!n.pg_is_running) return "down";
    static const std::vector<std::string> writable{"single", "wait_primary", "primary", "join_primary",
                                                   "apply_settings"};
    bool rw = std::find(writable.begin(), writable.end(), n.reported_state) != writable.end();
    return rw ? "read-write" : "read-only";
}

std::string notes_for(const NodeRow& n) {
    std::vector<std::string> notes;
    if (!n.keeper_reporting) {
        if (n.seconds_since_report)
            notes.push_back(fmt::format("keeper down (last report {:.0f}s ago)", *n.seconds_since_report));
        else
            notes.push_back("keeper down (never reported)");
    }
    if (n.candidate_priority == 0) notes.push_back("never promoted (priority 0)");
    if (!n.replication_quorum) notes.push_back("async (no quorum)");
    if (!n.waiting_reason.empty()) notes.push_back(n.waiting_reason);
    std::string out;
    for (const auto& note : notes) out += (out.empty() ? "" : "; ") + note;
    return out;
}

}  // namespace

std::optional<unsigned long long> parse_lsn(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) return std::nullopt;
    try {
        std::size_t used_hi = 0;
        std::size_t used_lo = 0;
        const unsigned long long hi = std::stoull(text.substr(0, slash), &used_hi, 16);
        const unsigned long long lo = std::stoull(text.substr(slash + 1), &used_lo, 16);
        if (used_hi != slash || used_lo != text.size() - slash - 1 || hi > 0xFFFFFFFFULL || lo > 0xFFFFFFFFULL)
            return std::nullopt;
        return (hi << 32) | lo;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<unsigned long long> lag_bytes(const std::vector<NodeRow>& nodes, const NodeRow& node) {
    static const std::vector<std::string> writable{"single", "wait_primary", "primary", "join_primary",
                                                   "apply_settings"};
    auto is_writable = [&](const std::string& s) {
        return std::find(writable.begin(), writable.end(), s) != writable.end();
    };
    for (const NodeRow& p : nodes) {
        if (p.group_id != node.group_id || !is_writable(p.reported_state) || !is_writable(p.goal_state)) continue;
        if (p.node_id == node.node_id || p.timeline != node.timeline) return std::nullopt;
        const auto primary_lsn = parse_lsn(p.lsn);
        const auto lsn = parse_lsn(node.lsn);
        if (!primary_lsn || !lsn) return std::nullopt;
        return *primary_lsn > *lsn ? *primary_lsn - *lsn : 0;
    }
    return std::nullopt;
}

std::string format_bytes(unsigned long long bytes) {
    if (bytes < 1024) return fmt::format("{} B", bytes);
    if (bytes < 1024ULL * 1024) return fmt::format("{:.1f} kB", bytes / 1024.0);
    if (bytes < 1024ULL * 1024 * 1024) return fmt::format("{:.1f} MB", bytes / (1024.0 * 1024));
    return fmt::format("{:.1f} GB", bytes / (1024.0 * 1024 * 1024));
}

std::string render_state_table(const std::vector<NodeRow>& nodes) {
    if (nodes.empty()) return "no node is registered in this formation\n";
    std::vector<std::vector<std::string>> rows;
    for (const NodeRow& n : nodes) {
        rows.push_back({n.name, fmt::format("{}/{}", n.group_id, n.node_id), fmt::format("{}:{}", n.host, n.port),
                        fmt::format("{}: {}", n.timeline, n.lsn.empty() ? "-" : n.lsn),
                        lag_bytes(nodes, n) ? format_bytes(*lag_bytes(nodes, n)) : "-",
                        fmt::format("{}{}", connection_kind(n), n.health == "good" ? "" : " !" + n.health),
                        n.reported_state, n.goal_state, fmt::format("{}/{}", n.candidate_priority,
                                                                   n.replication_quorum ? "yes" : "no"),
                        notes_for(n)});
    }
    return render_table(
        {"Name", "Group/Node", "Host:Port", "TLI: LSN", "Lag", "Connection", "Reported", "Goal", "Prio/Quorum", "Notes"},
        rows);
}

nlohmann::json state_to_json(const std::vector<NodeRow>& nodes) {
    nlohmann::json out = nlohmann::json::array();
    for (const NodeRow& n : nodes) {
        nlohmann::json j{{"node_id", n.node_id},
                         {"name", n.name},
                         {"group_id", n.group_id},
                         {"host", n.host},
                         {"port", n.port},
                         {"reported_state", n.reported_state},
                         {"goal_state", n.goal_state},
                         {"timeline", n.timeline},
                         {"lsn", n.lsn},
                         {"health", n.health},
                         {"pg_is_running", n.pg_is_running},
                         {"keeper_reporting", n.keeper_reporting},
                         {"candidate_priority", n.candidate_priority},
                         {"replication_quorum", n.replication_quorum},
                         {"sync_state", n.sync_state},
                         {"waiting_reason", n.waiting_reason}};
        const auto lag = lag_bytes(nodes, n);
        j["lag_bytes"] = lag ? nlohmann::json(*lag) : nlohmann::json(nullptr);
        j["seconds_since_report"] =
            n.seconds_since_report ? nlohmann::json(*n.seconds_since_report) : nlohmann::json(nullptr);
        out.push_back(std::move(j));
    }
    return out;
}

std::string render_events_table(const std::vector<EventRow>& events) {
    std::vector<std::vector<std::string>> rows;
    for (const EventRow& e : events)
        rows.push_back({e.event_time, e.node_name, e.reported_state, e.goal_state, e.description});
    return render_table({"Time", "Node", "Reported", "Goal", "Description"}, rows);
}

nlohmann::json events_to_json(const std::vector<EventRow>& events) {
    nlohmann::json out = nlohmann::json::array();
    for (const EventRow& e : events)
        out.push_back({{"event_id", e.event_id},
                       {"event_time", e.event_time},
                       {"node_id", e.node_id},
                       {"node_name", e.node_name},
                       {"group_id", e.group_id},
                       {"reported_state", e.reported_state},
                       {"goal_state", e.goal_state},
                       {"description", e.description}});
    return out;
}

std::string render_settings_table(const std::vector<std::pair<std::string, std::string>>& settings) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, value] : settings) rows.push_back({name, value});
    return render_table({"Setting", "Value"}, rows);
}

nlohmann::json settings_to_json(const std::vector<std::pair<std::string, std::string>>& settings) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, value] : settings) out[name] = value;
    return out;
}

std::string describe_state_notification(const std::string& payload) {
    nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return payload;
    auto text = [&](const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; };
    std::string line = fmt::format("{}: reported {}, goal {}", text("node"), text("reported"), text("goal"));
    if (!text("reason").empty()) line += " (" + text("reason") + ")";
    return line;
}

}  // namespace autoctl
