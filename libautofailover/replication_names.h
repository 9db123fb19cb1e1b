// Names and settings derived from node ids, identical on monitor and keeper.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/group_snapshot.h"
#include "libautofailover/settings.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace autofailover {

// application_name of the standby's walreceiver and name of its replication slot.
std::string standby_name(NodeId node);  // "autofailover_node_<id>"
// The node id in a name standby_name() made; empty for any other name.
std::optional<NodeId> node_id_of_standby_name(std::string_view name);

// synchronous_standby_names the group's primary must run with:
// "ANY n (autofailover_node_1, autofailover_node_3)" or "" (no synchronous replication).
std::string synchronous_standby_names(const GroupSnapshot& group, const FormationSettings& settings);

// What a keeper reads back from its primary's setting: "ANY 2 (a, b, c)" → 2, {a, b, c};
// "a" → 1, {a}; "" → 0, {}. parse(synchronous_standby_names(...)) round-trips.
struct SyncStandbyNames {
    int count = 0;
    std::vector<std::string> names;
};
SyncStandbyNames parse_synchronous_standby_names(const std::string& value);

}  // namespace autofailover
