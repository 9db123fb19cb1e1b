#include "libautofailover/group_snapshot.h"

namespace autofailover {

std::string_view to_string(Health health) {
    switch (health) {
        case Health::Bad: return "bad";
        case Health::Good: return "good";
        case Health::Unknown: break;
    }
    return "unknown";
}

const NodeSnapshot* GroupSnapshot::find(NodeId id) const {
    for (const auto& node : nodes)
        if (node.id == id) return &node;
    return nullptr;
}

}  // namespace autofailover
