#include "autoctl/dry_run.h"

#include "autoctl/state_view.h"

#include <fmt/format.h>

namespace autoctl {

namespace {
bool runs_sync_replication(const PlanRow& primary) {
    // primary / apply_settings: synchronous_standby_names is set; single / wait_primary: commits wait for nobody.
    return primary.reported_state == "primary" || primary.reported_state == "apply_settings";
}
}  // namespace

std::string render_dry_run(const std::string& command, const std::vector<PlanRow>& rows) {
    const PlanRow* primary = nullptr;
    const PlanRow* promoted = nullptr;
    bool drains = false;
    for (const auto& r : rows) {
        if (r.is_primary) primary = &r;
        if (r.would_be_promoted) promoted = &r;
        if (r.planned_goal == "draining" || r.planned_goal == "prepare_maintenance") drains = true;
    }
    std::string out = fmt::format("Dry run of the {}: nothing was changed.\n\n", command);
    if (promoted) {
        out += fmt::format("Would be promoted: {} (node {}, LSN {} on timeline {})\n", promoted->name,
                           promoted->node_id, promoted->lsn, promoted->timeline);
    } else {
        out += "Would be promoted: nobody yet\n";
    }
    const std::string waiting = rows.empty() ? "" : rows.front().waiting_reason;
    const long long waited_ms = rows.empty() ? 0 : rows.front().would_wait_ms;
    if (!waiting.empty())
        out += fmt::format("Waiting for: {}\n", waiting);
    else if (waited_ms > 0)
        out += fmt::format("Waiting for: about {:.1f} s first: {}\n", waited_ms / 1000.0, rows.front().would_wait_for);
    else
        out += "Waiting for: nothing\n";

    out += "Commits at risk: ";
    if (!primary) {
        out += "unknown: the group has no primary whose last LSN could be compared\n";
    } else if (drains) {
        out += fmt::format("none. {} drains first; the candidate is promoted only once it has every WAL record "
                           "of it{}\n",
                           primary->name,
                           promoted && promoted->behind_primary && *promoted->behind_primary > 0
                               ? fmt::format(" (it lacks {} now)", format_bytes(*promoted->behind_primary))
                               : "");
    } else if (promoted && promoted->behind_primary) {
        const unsigned long long gap = *promoted->behind_primary;
        if (gap == 0)
            out += fmt::format("none known: {} has everything {} last reported ({})\n", promoted->name,
                               primary->name, primary->lsn);
        else if (runs_sync_replication(*primary))
            out += fmt::format("{} of WAL that {} last reported ({}) is not on {}; {} ran synchronous "
                               "replication, so acknowledged commits are on a quorum standby, and the election "
                               "fetches them first (fast_forward)\n",
                               format_bytes(gap), primary->name, primary->lsn, promoted->name, primary->name);
        else
            out += fmt::format("up to {} of WAL that {} last reported ({}) is not on {}: {} ran without "
                               "synchronous replication ({}), so commits acknowledged in it would be lost\n",
                               format_bytes(gap), primary->name, primary->lsn, promoted->name, primary->name,
                               primary->reported_state);
    } else {
        out += "see the gaps below (no promotion to compare with yet)\n";
    }

    std::vector<std::vector<std::string>> table;
    for (const auto& r : rows)
        table.push_back({r.name, r.reported_state, r.goal_state, r.planned_goal.empty() ? "(unchanged)" : r.planned_goal,
                         fmt::format("{}: {}", r.timeline, r.lsn),
                         r.is_primary ? "primary"
                                      : (r.behind_primary ? format_bytes(*r.behind_primary) : std::string("-")),
                         r.reason});
    out += "\nFirst step the monitor would store:\n";
    out += render_table({"Name", "Reported", "Goal now", "Planned goal", "TLI: LSN", "Behind primary", "Reason"}, table);
    return out;
}

}  // namespace autoctl
