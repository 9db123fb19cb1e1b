#include "keeper/replication_slots.h"

#include "keeper/keeper_log.h"
#include "keeper/postgres_files.h"
#include "libautofailover/settings.h"  // replication_names.h needs FormationSettings
#include "libautofailover/replication_names.h"

#include <pqxx/pqxx>

#include <set>

namespace autofailover::keeper {
namespace {

void drop_local_slots(LocalPostgres& pg) {
    pg.sql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active");
}

}  // namespace

void maintain_replication_slots(ActionContext& ctx) {
    std::set<std::string> wanted;
    for (const auto& o : ctx.others) wanted.insert(standby_name(o.node_id));
    std::set<std::string> existing;
    for (const auto& row : ctx.pg.sql("SELECT slot_name, active FROM pg_replication_slots "
                                      "WHERE slot_type = 'physical' AND slot_name LIKE 'autofailover\\_node\\_%'")) {
        std::string name = row[0].c_str();
        existing.insert(name);
        if (!wanted.count(name) && !row[1].as<bool>()) {
            ctx.pg.sql_params("SELECT pg_drop_replication_slot($1)", name);
            log_info("node={} dropped replication slot {} (node removed)", ctx.config.name, name);
        }
    }
    for (const auto& name : wanted) {
        if (existing.count(name)) continue;
        ctx.pg.sql_params("SELECT pg_create_physical_replication_slot($1, true)", name);
        log_info("node={} created replication slot {}", ctx.config.name, name);
    }
}

void drop_standby_slots(ActionContext& ctx) {
    // Standbys keep no slots; ones made just before a promotion that did not happen would
    // hold WAL on this standby for ever.
    auto dropped = ctx.pg.sql(
        "SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE NOT active AND slot_type = 'physical' AND slot_name LIKE 'autofailover\\_node\\_%'");
    for (const auto& row : dropped)
        log_info("node={} state={} dropped replication slot {} (a standby keeps none)", ctx.config.name,
                 to_string(ctx.state.current_state), row[0].c_str());
}

void drop_local_slots_once_up(ActionContext& ctx) {
    // Slots copied from, or left over by, the old primary hold back WAL and xmin.
    if (wait_until(ctx, ctx.config.timeouts.postgres_start_timeout, [&] {
            ctx.pg.sql("SELECT 1");
            return true;
        }))
        drop_local_slots(ctx.pg);
}

bool slot_exists_on(const KeeperConfig& config, const std::string& host, int port, const std::string& slot) {
    pqxx::connection conn(source_conninfo(config, host, port));
    pqxx::nontransaction tx(conn);
    auto r = tx.exec_params("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot);
    return !r.empty();
}

}  // namespace autofailover::keeper
