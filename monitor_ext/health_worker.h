// The health-check background worker: probes every node each
// autofailover.health_check_period and runs the decision for groups whose
// health changed or that wait for something, so a dead primary fails over
// even when no keeper calls in.
#pragma once

namespace autofailover_ext {

void register_health_worker();

}  // namespace autofailover_ext
