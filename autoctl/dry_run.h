// `autoctl perform switchover|failover|promotion --dry-run`: what the monitor's
// core would do now (autofailover.plan_operation), printed for an operator.
#pragma once

#include "autoctl/monitor_client.h"

#include <string>
#include <vector>

namespace autoctl {

// The report: who would be promoted, the commits at risk (LSN gaps against the
// primary's last report), what the formation would wait for, and the first step.
std::string render_dry_run(const std::string& command, const std::vector<PlanRow>& rows);

}  // namespace autoctl
