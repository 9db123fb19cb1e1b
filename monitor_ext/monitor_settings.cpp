// GUC definitions. Defaults of the decision timeouts come from the core, so
// monitor and keeper agree on them without a second copy of the numbers.
#include "monitor_ext/monitor_settings.h"

#include "monitor_ext/pg_include.h"

namespace autofailover_ext {
namespace {

int health_check_period_ms = 1000;
int health_check_timeout_ms = 1000;
int health_check_max_retries = 2;
int health_check_retry_delay_ms = 200;
int node_considered_unhealthy_timeout_ms = 0;
int network_partition_timeout_ms = 0;
int fencing_margin_ms = 0;
int startup_grace_period_ms = 0;
int switchover_timeout_ms = 0;
int promotion_veto_timeout_ms = 0;
int primary_suspect_timeout_ms = 0;
char* database_name = nullptr;
int max_nodes_per_group = 10;
int keeper_transaction_limit = 5000;
int decision_lock_timeout_ms = 1000;
int adoption_grace_period_ms = 30000;

void define_ms(const char* name, const char* description, int* variable, int default_ms, int min_ms) {
    DefineCustomIntVariable(name, description, nullptr, variable, default_ms, min_ms, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
}

}  // namespace

void define_settings() {
    const autofailover_bridge::SettingsRow core = autofailover_bridge::default_settings();
    define_ms("autofailover.health_check_period", "Time between two probe rounds of every node.",
              &health_check_period_ms, 1000, 10);
    define_ms("autofailover.health_check_timeout", "How long one probe connection attempt may take.",
              &health_check_timeout_ms, 1000, 10);
    DefineCustomIntVariable("autofailover.health_check_max_retries",
                            "Failed probe attempts retried within one round before a node counts as down.", nullptr,
                            &health_check_max_retries, 2, 0, 100, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    define_ms("autofailover.health_check_retry_delay", "Pause before retrying a failed probe.",
              &health_check_retry_delay_ms, 200, 0);
    define_ms("autofailover.node_considered_unhealthy_timeout",
              "A keeper silent this long, whose Postgres fails the probes, is unhealthy.",
              &node_considered_unhealthy_timeout_ms, core.node_considered_unhealthy_timeout_ms, 1);
    define_ms("autofailover.network_partition_timeout",
              "A primary that reaches neither monitor nor standby this long fences itself (sent to keepers).",
              &network_partition_timeout_ms, core.network_partition_timeout_ms, 1);
    define_ms("autofailover.fencing_margin",
              "Extra wait on top of network_partition_timeout before the monitor promotes.", &fencing_margin_ms,
              core.fencing_margin_ms, 0);
    define_ms("autofailover.startup_grace_period", "After the monitor starts, no node is condemned for this long.",
              &startup_grace_period_ms, core.startup_grace_period_ms, 0);
    define_ms("autofailover.switchover_timeout",
              "A switchover whose candidate is not promoted this long after the primary drains is abandoned.",
              &switchover_timeout_ms, core.switchover_timeout_ms, 1);
    define_ms("autofailover.promotion_veto_timeout",
              "A node whose pre_promote hook vetoed its promotion is not elected again for this long.",
              &promotion_veto_timeout_ms, core.promotion_veto_timeout_ms, 0);
    define_ms("autofailover.primary_suspect_timeout",
              "A primary whose keeper is silent this long and whose probes fail has its standbys frozen early.",
              &primary_suspect_timeout_ms, core.primary_suspect_timeout_ms, 0);
    define_ms("autofailover.keeper_transaction_limit",
              "A keeper's transaction that asks for a decision lock is ended (its session terminated) when still "
              "open after this long, so no keeper can stall its group's decisions.",
              &keeper_transaction_limit, 5000, 100);
    define_ms("autofailover.decision_lock_timeout",
              "How long the health-check worker waits for a group's decision lock before it skips the group "
              "for this round.",
              &decision_lock_timeout_ms, 1000, 10);
    define_ms("autofailover.adoption_grace_period",
              "After a standby is adopted by a new monitor into a group whose primary is not adopted yet, no "
              "election runs for this long (docs/monitor-ha.md, M6).",
              &adoption_grace_period_ms, 30000, 0);
    // Superuser-settable per session too, so a test can build a larger group.
    DefineCustomIntVariable("autofailover.max_nodes_per_group",
                            "register_node refuses a node beyond this many in its group (each one takes a "
                            "replication slot on the primary, which has max_replication_slots = 12).",
                            nullptr, &max_nodes_per_group, 10, 1, 1000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("autofailover.database", "Database where the health-check worker finds the extension.",
                               nullptr, &database_name, "autofailover", PGC_POSTMASTER, 0, nullptr, nullptr,
                               nullptr);
}

autofailover_bridge::SettingsRow decision_settings(int number_sync_standbys) {
    autofailover_bridge::SettingsRow row{};
    row.number_sync_standbys = number_sync_standbys;
    row.node_considered_unhealthy_timeout_ms = node_considered_unhealthy_timeout_ms;
    row.network_partition_timeout_ms = network_partition_timeout_ms;
    row.fencing_margin_ms = fencing_margin_ms;
    row.startup_grace_period_ms = startup_grace_period_ms;
    row.switchover_timeout_ms = switchover_timeout_ms;
    row.promotion_veto_timeout_ms = promotion_veto_timeout_ms;
    row.primary_suspect_timeout_ms = primary_suspect_timeout_ms;
    return row;
}

ProbeSettings probe_settings() {
    return ProbeSettings{health_check_period_ms, health_check_timeout_ms, health_check_max_retries,
                         health_check_retry_delay_ms};
}

const char* monitor_database() { return database_name; }

int keeper_transaction_limit_ms() { return keeper_transaction_limit; }

}  // namespace autofailover_ext
