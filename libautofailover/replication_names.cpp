#include "libautofailover/replication_names.h"

#include "libautofailover/decide.h"
#include "libautofailover/decision_context.h"

#include <algorithm>
#include <regex>

namespace autofailover {

std::string standby_name(NodeId node) { return "autofailover_node_" + std::to_string(node); }

std::optional<NodeId> node_id_of_standby_name(std::string_view name) {
    constexpr std::string_view prefix = "autofailover_node_";
    if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
    const std::string_view digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 18 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
    NodeId id = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        id = id * 10 + (c - '0');
    }
    return id;
}

// The list holds the quorum standbys whose goal is secondary (or
// prepare_promotion: a switchover candidate keeps acknowledging until the old
// primary has drained). When the primary must run with synchronous replication
// but no such standby exists (number_sync_standbys >= 1 with every standby down,
// or a primary resuming after an aborted switchover), the list falls back to
// every quorum standby that streams or has streamed, so that commits block
// rather than silently lose their protection. Standbys in (wait_)maintenance are
// never listed: leaving the list is what wait_maintenance waits for.
std::string synchronous_standby_names(const GroupSnapshot& group, const FormationSettings& settings) {
    const auto primary_id = find_primary(group);
    if (!primary_id) return "";
    const NodeSnapshot* primary = group.find(*primary_id);
    if (!primary || primary->goal_state == NodeState::Single || primary->goal_state == NodeState::WaitPrimary)
        return "";

    std::vector<const NodeSnapshot*> listed;
    for (const auto& node : group.nodes)
        if (node.id != primary->id && node.replication_quorum &&
            (node.goal_state == NodeState::Secondary || node.goal_state == NodeState::PreparePromotion))
            listed.push_back(&node);
    if (listed.empty())
        for (const auto& node : group.nodes)
            if (node.id != primary->id && detail::may_be_in_sync_list(node) &&
                node.goal_state != NodeState::WaitMaintenance)
                listed.push_back(&node);
    if (listed.empty()) return "";

    std::sort(listed.begin(), listed.end(), [](const NodeSnapshot* a, const NodeSnapshot* b) {
        if (a->candidate_priority != b->candidate_priority) return a->candidate_priority > b->candidate_priority;
        return a->id < b->id;
    });
    std::string names = "ANY " + std::to_string(std::max(1, settings.number_sync_standbys)) + " (";
    for (std::size_t i = 0; i < listed.size(); ++i) {
        if (i > 0) names += ", ";
        names += standby_name(listed[i]->id);
    }
    return names + ")";
}

SyncStandbyNames parse_synchronous_standby_names(const std::string& value) {
    SyncStandbyNames out;
    static const std::regex with_count(R"(^\s*(?:(?:ANY|FIRST)\s+)?(\d+)\s*\((.*)\)\s*$)", std::regex::icase);
    std::smatch m;
    std::string list;
    if (std::regex_match(value, m, with_count)) {
        out.count = std::stoi(m[1].str());
        list = m[2].str();
    } else {
        list = value;
    }
    std::string item;
    auto flush = [&] {
        auto start = item.find_first_not_of(" \t\"");
        auto end = item.find_last_not_of(" \t\"");
        if (start != std::string::npos) out.names.push_back(item.substr(start, end - start + 1));
        item.clear();
    };
    for (char c : list) {
        if (c == ',') flush();
        else item += c;
    }
    flush();
    if (out.count == 0 && !out.names.empty() && !std::regex_match(value, m, with_count)) out.count = 1;
    return out;
}

}  // namespace autofailover
