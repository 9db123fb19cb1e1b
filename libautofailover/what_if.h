// What-if planning for `autoctl perform switchover|failover --dry-run`: the
// operator command's plan on a snapshot, then the decision function run again
// and again with keepers that reach every goal at once, until a node other than
// the old primary is told to be the primary, or nothing moves any more. Pure:
// the snapshot, settings and time come in, nothing is written anywhere.
#pragma once
#include "libautofailover/no_postgres.h"

#include "libautofailover/decide.h"

#include <chrono>
#include <optional>
#include <string>

namespace autofailover {

struct WhatIf {
    Decision plan;                   // the command's first step, exactly what the monitor would store
    std::optional<NodeId> promoted;  // the node that would become the primary
    // Empty when a node would be promoted; else why the formation would wait (the
    // last decision's waiting reason), e.g. a failover that waits for fencing.
    std::string waiting;
    int rounds = 0;  // decisions simulated after the plan
    // Simulated time the formation waited on the way (a fencing delay, say), and why
    // it waited when the clock first had to move; zero and empty when nothing waited.
    std::chrono::milliseconds waited{0};
    std::string first_wait;
};

// Model of the keepers (docs/cli.md, "--dry-run"): a keeper that reports (by the
// core's keeper_is_reporting) reaches its goal before the next decision; Postgres
// runs except in draining, demoted, demote_timeout, maintenance and dropped; the
// standbys a draining primary reports streaming receive all its WAL; a node in
// fast_forward reaches the most advanced LSN of the group. LSNs otherwise stay
// as reported. When nothing moves but a rule waits, the clock moves on by `tick`
// (reporting keepers keep reporting, silent ones stay silent) for at most `max_wait`:
// a fencing delay or switchover_timeout then plays out as it would.
WhatIf what_if(const GroupSnapshot& group, const FormationSettings& settings, const MonitorClock& clock,
               const Decision& plan, int max_rounds = 30, std::chrono::milliseconds max_wait = std::chrono::seconds(120),
               std::chrono::milliseconds tick = std::chrono::milliseconds(250));

}  // namespace autofailover
