// The autofailover.* GUCs: every timeout of the monitor is one of them
// (docs/settings.md), all PGC_SIGHUP so a reload changes them.
#pragma once

#include "monitor_ext/core_bridge.h"

namespace autofailover_ext {

struct ProbeSettings {
    int period_ms;
    int timeout_ms;
    int max_retries;
    int retry_delay_ms;
};

void define_settings();
// Decision timeouts from the GUCs plus the formation's own number_sync_standbys.
autofailover_bridge::SettingsRow decision_settings(int number_sync_standbys);
ProbeSettings probe_settings();
const char* monitor_database();
// autofailover.keeper_transaction_limit, in ms (monitor_ext/decision_lock.cpp).
int keeper_transaction_limit_ms();

}  // namespace autofailover_ext
