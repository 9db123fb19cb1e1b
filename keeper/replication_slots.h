// The physical replication slots the keeper manages, "autofailover_node_<id>":
// a primary keeps one per other node of its group, a standby keeps none.
#pragma once

#include "keeper/action_context.h"

#include <string>

namespace autofailover::keeper {

// On a primary: one physical slot per other node, stale autofailover slots dropped.
void maintain_replication_slots(ActionContext& ctx);

// On a running standby: drops the inactive autofailover slots (a standby keeps none).
void drop_standby_slots(ActionContext& ctx);

// Once the local Postgres takes connections (within postgres_start_timeout): drops
// every inactive slot, which a rewound or copied directory inherited from the old primary.
void drop_local_slots_once_up(ActionContext& ctx);

// True when host:port has the physical slot `slot` (asked as the replication role).
bool slot_exists_on(const KeeperConfig& config, const std::string& host, int port, const std::string& slot);

}  // namespace autofailover::keeper
