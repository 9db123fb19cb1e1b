#include "keeper/standby_setup.h"

#include "support/conninfo.h"
#include "keeper/keeper.h"
#include "keeper/keeper_log.h"
#include "keeper/postgres_files.h"
#include "keeper/replication_auth.h"
#include "libautofailover/settings.h"  // replication_names.h needs FormationSettings
#include "libautofailover/replication_names.h"

#include <pqxx/pqxx>

#include <algorithm>

namespace autofailover::keeper {

void ensure_replication_access(ActionContext& ctx, bool reload_if_changed) {
    if (ctx.config.skip_pg_hba) return;  // --skip-pg-hba: the DBA writes every line (docs/clients.md)
    std::vector<std::string> hosts = {ctx.config.hostname};
    for (const auto& o : ctx.others) hosts.push_back(o.host);
    const std::vector<std::string> monitors = support::conninfo_hosts(ctx.config.monitor_uri);
    auto lines = hba_lines(hosts, monitors.empty() ? std::string() : monitors.front(), ctx.config.auth_method,
                           ssl_enabled(ctx.config));
    // Replicated monitors (docs/monitor-ha.md): whichever leads probes the nodes.
    for (std::size_t i = 1; i < monitors.size(); ++i)
        for (auto& line : hba_lines({}, monitors[i], ctx.config.auth_method, ssl_enabled(ctx.config)))
            if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
    // After the replication and probe lines, which keep the keeper's roles to the group's hosts.
    for (auto& line : client_hba_lines(ctx.config, ctx.state.formation_clients)) lines.push_back(std::move(line));
    if (write_hba_block(ctx.config.pgdata, lines)) {
        // Logged when the block changes, so once per change of the group, not every period.
        for (const auto& host : hosts_refused_by_hba(hosts))
            log_error("node={} group host \"{}\" is neither an IP address nor a host name: no pg_hba.conf line for it",
                      ctx.config.name, printable(host));
        if (reload_if_changed && ctx.pg.postmaster_alive()) {
            log_info("node={} pg_hba.conf updated for {} group hosts and {} client networks (+{} formation-wide)",
                     ctx.config.name, hosts.size(), ctx.config.allow_clients.size(),
                     ctx.state.formation_clients.networks.size());
            ctx.pg.reload();
        }
    }
}

void write_standby_setup(ActionContext& ctx, const std::string& host, int port, bool with_slot) {
    const std::string name = standby_name(ctx.state.node_id);
    edit_auto_conf(ctx.config.pgdata, {{"primary_conninfo", replication_conninfo(ctx.config, host, port, name)},
                                       {"primary_slot_name", with_slot ? std::optional<std::string>(name) : std::nullopt},
                                       {"synchronous_standby_names", std::nullopt},
                                       {"recovery_target_timeline", std::nullopt}});
    write_standby_signal(ctx.config.pgdata);
}

void point_standby_at(ActionContext& ctx, const std::string& host, int port) {
    const std::string slot = standby_name(ctx.state.node_id);
    alter_system(ctx.pg, "primary_conninfo", replication_conninfo(ctx.config, host, port, slot));
    alter_system(ctx.pg, "primary_slot_name", slot);
    ctx.pg.reload();
}

bool ensure_following_primary(ActionContext& ctx) {
    if (ctx.assignment.primary_host.empty() || ctx.assignment.primary_port == 0) return false;
    const std::string slot = standby_name(ctx.state.node_id);
    const std::string wanted = replication_conninfo(ctx.config, ctx.assignment.primary_host, ctx.assignment.primary_port, slot);
    auto r = ctx.pg.sql("SELECT pg_is_in_recovery(), current_setting('primary_conninfo'), "
                        "current_setting('primary_slot_name')");
    if (!r[0][0].as<bool>()) return false;
    if (wanted == r[0][1].c_str() && slot == r[0][2].c_str()) return false;
    point_standby_at(ctx, ctx.assignment.primary_host, ctx.assignment.primary_port);
    return true;
}

std::optional<WalReceiverView> wal_receiver(LocalPostgres& pg) {
    auto r = pg.sql("SELECT status, receive_start_lsn::text, flushed_lsn::text FROM pg_stat_wal_receiver");
    if (r.empty()) return std::nullopt;
    WalReceiverView v;
    v.status = r[0][0].is_null() ? "" : r[0][0].c_str();
    if (!r[0][1].is_null()) v.receive_start_lsn = parse_lsn(r[0][1].c_str());
    if (!r[0][2].is_null()) v.flushed_lsn = parse_lsn(r[0][2].c_str());
    return v;
}

void start_as_standby_of(ActionContext& ctx, const std::string& host, int port) {
    write_autofailover_conf(ctx.config);
    ensure_replication_access(ctx, false);
    write_standby_setup(ctx, host, port, true);
    ctx.pg.start(ctx.tick);
    // Report once streaming: a report sent before the walreceiver connected shows the primary no stream,
    // and both keepers would then report again only a poll_period later (bench/rejoin.py, standby path).
    const bool streams = wait_until(ctx, ctx.config.timeouts.standby_stream_wait, [&] {
        auto v = wal_receiver(ctx.pg);
        return v && v->status == "streaming";
    });
    if (!streams)
        log_debug("node={} walreceiver not streaming after standby_stream_wait ({}ms); reporting anyway",
                  ctx.config.name, ctx.config.timeouts.standby_stream_wait.count());
}

std::optional<std::string> start_rewound_standby(ActionContext& ctx, const std::string& host, int port) {
    const std::string log_path = ctx.pg.server_log_path();
    ServerLogWatch watch(log_path, ServerLogWatch::end_of(log_path));
    std::optional<std::string> reason;
    auto stopped_because = [&](std::string why) {
        ctx.pg.stop("immediate", ctx.tick);
        return std::optional<std::string>(std::move(why));
    };
    write_autofailover_conf(ctx.config);
    ensure_replication_access(ctx, false);
    write_standby_setup(ctx, host, port, true);
    try {
        // A standby after pg_rewind accepts connections only once consistent, which may need
        // WAL the primary no longer has: the server log tells at once, pg_ctl would wait its timeout.
        ctx.pg.start(ctx.tick, [&] {
            if (ctx.cancelled && ctx.cancelled()) return true;
            if (!reason) reason = watch.unfollowable_reason();
            return reason.has_value();
        });
    } catch (const KeeperError& e) {
        if (ctx.cancelled && ctx.cancelled()) throw;
        if (!reason) reason = watch.unfollowable_reason();
        if (reason) return stopped_because(*reason);
        // pg_ctl gave up waiting while the postmaster runs: it never became consistent.
        if (ctx.pg.postmaster_alive())
            return stopped_because("it did not become a consistent standby within postgres_start_timeout (" +
                                   std::to_string(ctx.config.timeouts.postgres_start_timeout.count()) + "ms)");
        throw;  // Postgres did not start at all: a new base backup would not start either
    }
    log_debug("node={} rewound standby started", ctx.config.name);
    const std::optional<Lsn> primary_lsn = primary_flush_lsn(ctx, host, port);
    log_debug("node={} primary flush lsn {}", ctx.config.name, primary_lsn ? format_lsn(*primary_lsn) : "none");
    std::string last_view;
    const bool streams = wait_until(ctx, ctx.config.timeouts.rejoin_stream_timeout, [&] {
        if (!reason) reason = watch.unfollowable_reason();
        auto v = wal_receiver(ctx.pg);
        if (debug_enabled()) {
            std::string text = v ? v->status + " start=" + (v->receive_start_lsn ? format_lsn(*v->receive_start_lsn) : "-") +
                                       " flushed=" + (v->flushed_lsn ? format_lsn(*v->flushed_lsn) : "-")
                                 : "no walreceiver";
            if (text != last_view) log_debug("node={} walreceiver {}", ctx.config.name, text);
            last_view = text;
        }
        return reason.has_value() || streams_from_primary(v, primary_lsn);
    });
    log_debug("node={} streams={}", ctx.config.name, streams);
    if (reason) return stopped_because(*reason);
    if (streams) return std::nullopt;
    if (!primary_lsn)
        fail("the primary " + host + ":" + std::to_string(port) + " did not answer while the rewound standby waited "
             "to stream from it; trying again");
    return stopped_because("it did not stream from the primary within rejoin_stream_timeout (" +
                           std::to_string(ctx.config.timeouts.rejoin_stream_timeout.count()) + "ms)");
}

std::optional<Lsn> primary_flush_lsn(ActionContext& ctx, const std::string& host, int port) {
    try {
        pqxx::connection conn(source_conninfo(ctx.config, host, port));
        pqxx::nontransaction tx(conn);
        return parse_lsn(tx.exec("SELECT pg_current_wal_flush_lsn()::text")[0][0].c_str());
    } catch (const std::exception& e) {
        log_debug("node={} primary {}:{} did not answer: {}", ctx.config.name, host, port, e.what());
        return std::nullopt;
    }
}

}  // namespace autofailover::keeper
