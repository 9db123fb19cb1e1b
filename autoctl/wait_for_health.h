// `--wait`: follow a long operation on the monitor until the formation is
// healthy again, printing one progress line per state change (LISTEN on
// autofailover_state), then the new state.
#pragma once

#include "autoctl/monitor_client.h"

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace autoctl {

// How often the state is re-read when no notification arrives, so a missed
// NOTIFY (or a keeper that stops reporting) cannot stall the wait.
inline constexpr std::chrono::milliseconds kStateRecheckInterval{500};

// Call before starting the operation so that no notification is missed.
void start_following(MonitorClient& monitor);

// Returns the nodes once assess_formation() says healthy; throws
// CliError(Timeout) after `timeout` with what the formation is still waiting for.
std::vector<NodeRow> wait_until_healthy(MonitorClient& monitor, const std::string& formation, std::chrono::seconds timeout,
                        std::ostream& progress);

// Checks the healthy end state of an operation (e.g. "the primary changed");
// throws CliError when the operation did not have its effect.
using OutcomeCheck = std::function<void(const std::vector<NodeRow>&)>;

// The shape of every operator command: LISTEN, run `operation` on the
// monitor, then with wait_seconds > 0 follow it to health and check the
// outcome; with 0 print the state right away.
void run_and_follow(MonitorClient& monitor, const std::string& formation, int wait_seconds,
                    const std::function<void()>& operation, std::ostream& out,
                    const OutcomeCheck& check_outcome = nullptr);

// The name of the node whose goal is a primary state in `group`, or "".
std::string primary_of(const std::vector<NodeRow>& nodes, int group);

}  // namespace autoctl
