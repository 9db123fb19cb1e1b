#include "libautofailover/decide.h"

namespace autofailover {

bool keeper_is_reporting(const NodeSnapshot& node, const FormationSettings& settings, const MonitorClock& clock) {
    return node.last_report && clock.now - *node.last_report <= settings.timeouts.node_considered_unhealthy_timeout;
}

// Unhealthy means: the keeper says Postgres is down, or the keeper is silent AND
// the monitor's own probe, newer than the last report, failed, AND the monitor is
// past its startup grace (fresh probes after a monitor restart prove nothing).
// A silent keeper alone never condemns a node: its Postgres may serve fine.
bool node_is_unhealthy(const NodeSnapshot& node, const FormationSettings& settings, const MonitorClock& clock) {
    if (node.last_report && !node.pg_is_running) return true;
    if (keeper_is_reporting(node, settings, clock)) return false;
    const bool probe_newer_than_report =
        node.last_health_check && (!node.last_report || *node.last_health_check > *node.last_report);
    const bool past_startup_grace = clock.now - clock.monitor_started > settings.timeouts.startup_grace_period;
    return node.health == Health::Bad && probe_newer_than_report && past_startup_grace;
}

}  // namespace autofailover
