#include "keeper/action_context.h"

#include "keeper/keeper.h"
#include "keeper/keeper_log.h"

#include <thread>

namespace autofailover::keeper {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::string quote_literal(LocalPostgres& pg, const std::string& value) {
    auto r = pg.sql_params("SELECT quote_literal($1::text)", value);
    return r[0][0].c_str();
}

}  // namespace

[[noreturn]] void fail(const std::string& message) { throw KeeperError(KeeperError::Kind::LocalPostgres, message); }

void alter_system(LocalPostgres& pg, const std::string& name, const std::optional<std::string>& value) {
    if (value) pg.sql("ALTER SYSTEM SET " + name + " TO " + quote_literal(pg, *value));
    else pg.sql("ALTER SYSTEM RESET " + name);
}

bool wait_until(ActionContext& ctx, milliseconds timeout, const std::function<bool()>& done) {
    const auto deadline = SteadyClock::now() + timeout;
    auto next_tick = SteadyClock::now() + ctx.config.timeouts.poll_period;
    for (;;) {
        try {
            if (done()) return true;
        } catch (const std::exception& e) {
            log_debug("node={} waiting: {}", ctx.config.name, e.what());
        }
        if (SteadyClock::now() >= deadline) return false;
        if (ctx.cancelled && ctx.cancelled()) fail("interrupted: the keeper is stopping");
        if (ctx.tick && SteadyClock::now() >= next_tick) {
            ctx.tick();
            next_tick = SteadyClock::now() + ctx.config.timeouts.poll_period;
        }
        std::this_thread::sleep_for(ctx.config.timeouts.local_check_interval);
    }
}

std::string ms_since(SteadyClock::time_point start) {
    return std::to_string(std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start).count()) + "ms";
}

bool in_recovery(LocalPostgres& pg) { return pg.sql("SELECT pg_is_in_recovery()")[0][0].as<bool>(); }

void ensure_running(ActionContext& ctx) {
    if (!ctx.pg.postmaster_alive()) ctx.pg.start(ctx.tick);
    if (!wait_until(ctx, ctx.config.timeouts.postgres_start_timeout, [&] {
            ctx.pg.sql("SELECT 1");
            return true;
        }))
        fail("Postgres started but does not accept connections");
}

const std::string& require_primary(ActionContext& ctx) {
    if (ctx.assignment.primary_host.empty() || ctx.assignment.primary_port == 0)
        throw KeeperError(KeeperError::Kind::MonitorError, "the monitor names no primary to follow yet");
    return ctx.assignment.primary_host;
}

void persist(ActionContext& ctx) {
    if (ctx.persist) ctx.persist();
}

void forget_failed_rejoin(ActionContext& ctx) {
    if (!ctx.state.rejoin_needs_base_backup) return;
    ctx.state.rejoin_needs_base_backup = false;
    persist(ctx);
}

}  // namespace autofailover::keeper
