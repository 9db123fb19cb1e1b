#include "libautofailover/node_state.h"

namespace autofailover {

namespace {

struct StateName {
    NodeState state;
    std::string_view name;
};

// In SQL enum order; the regress test compares this list with enum_range().
constexpr std::array<StateName, kNodeStateCount> kStateNames{{
    {NodeState::Init, "init"},
    {NodeState::Single, "single"},
    {NodeState::WaitPrimary, "wait_primary"},
    {NodeState::Primary, "primary"},
    {NodeState::JoinPrimary, "join_primary"},
    {NodeState::ApplySettings, "apply_settings"},
    {NodeState::Draining, "draining"},
    {NodeState::DemoteTimeout, "demote_timeout"},
    {NodeState::Demoted, "demoted"},
    {NodeState::WaitStandby, "wait_standby"},
    {NodeState::Catchingup, "catchingup"},
    {NodeState::Secondary, "secondary"},
    {NodeState::PreparePromotion, "prepare_promotion"},
    {NodeState::StopReplication, "stop_replication"},
    {NodeState::ReportLsn, "report_lsn"},
    {NodeState::FastForward, "fast_forward"},
    {NodeState::JoinSecondary, "join_secondary"},
    {NodeState::Maintenance, "maintenance"},
    {NodeState::PrepareMaintenance, "prepare_maintenance"},
    {NodeState::WaitMaintenance, "wait_maintenance"},
    {NodeState::Dropped, "dropped"},
}};

std::array<NodeState, kNodeStateCount> make_all_states() {
    std::array<NodeState, kNodeStateCount> states{};
    for (std::size_t i = 0; i < kStateNames.size(); ++i) states[i] = kStateNames[i].state;
    return states;
}

}  // namespace

const std::array<NodeState, kNodeStateCount>& all_node_states() {
    static const std::array<NodeState, kNodeStateCount> states = make_all_states();
    return states;
}

std::string_view to_string(NodeState state) {
    for (const auto& entry : kStateNames)
        if (entry.state == state) return entry.name;
    return "unknown";
}

std::optional<NodeState> parse_node_state(std::string_view text) {
    for (const auto& entry : kStateNames)
        if (entry.name == text) return entry.state;
    return std::nullopt;
}

bool is_writable(NodeState state) {
    switch (state) {
        case NodeState::Single:
        case NodeState::WaitPrimary:
        case NodeState::Primary:
        case NodeState::JoinPrimary:
        case NodeState::ApplySettings:
            return true;
        default:
            return false;
    }
}

bool belongs_to_primary(NodeState state) {
    return is_writable(state) || state == NodeState::Draining || state == NodeState::DemoteTimeout ||
           state == NodeState::PrepareMaintenance;
}

}  // namespace autofailover
