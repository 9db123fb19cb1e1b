// The Prometheus text exposition format (version 0.0.4) of autofailover.metrics()
// rows: one # HELP and # TYPE per metric name, then its samples.
#pragma once

#include "autoctl/monitor_client.h"

#include <string>
#include <vector>

namespace autoctl {

// Rows of one name must be adjacent (metrics() orders them so); HELP text is escaped (\\ and \n).
std::string render_prometheus(const std::vector<MetricRow>& rows);

}  // namespace autoctl
