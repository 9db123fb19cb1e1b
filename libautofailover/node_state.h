// The FSM vocabulary shared by monitor and keeper. The text names are exactly
// the labels of the SQL enum autofailover.node_state (a regress test compares
// enum_range() with all_node_states()).
#pragma once
#include "libautofailover/no_postgres.h"

#include <array>
#include <optional>
#include <string_view>

namespace autofailover {

enum class NodeState {
    Init,
    Single,
    WaitPrimary,
    Primary,
    JoinPrimary,
    ApplySettings,
    Draining,
    DemoteTimeout,
    Demoted,
    WaitStandby,
    Catchingup,
    Secondary,
    PreparePromotion,
    StopReplication,
    ReportLsn,
    FastForward,
    JoinSecondary,
    Maintenance,
    PrepareMaintenance,
    WaitMaintenance,
    Dropped,
};

inline constexpr std::size_t kNodeStateCount = 21;

// In SQL enum order.
const std::array<NodeState, kNodeStateCount>& all_node_states();

std::string_view to_string(NodeState state);
std::optional<NodeState> parse_node_state(std::string_view text);

// Postgres accepts writes in this state (clients with target_session_attrs=read-write land here).
bool is_writable(NodeState state);
// The node is, or was until this step, the group's primary (includes draining/demote_timeout/prepare_maintenance).
bool belongs_to_primary(NodeState state);

}  // namespace autofailover
