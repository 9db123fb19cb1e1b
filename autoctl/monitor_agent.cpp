#include "autoctl/monitor_agent.h"

#include "support/child_process.h"
#include "autoctl/etcd_client.h"
#include "autoctl/etcd_leader_placement.h"
#include "autoctl/exit_codes.h"

#include "support/atomic_file.h"
#include "support/conninfo.h"
#include "keeper/keeper_log.h"
#include "libautofailover/lsn.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using autofailover::support::ChildResult;
using autofailover::support::run_operator_child;
using autofailover::support::run_operator_child_or_throw;

namespace autoctl {

namespace {

using Json = nlohmann::json;
using autofailover::keeper::log_error;
using autofailover::keeper::log_info;
using autofailover::keeper::log_warn;
using autofailover::support::conninfo_quote;
using autofailover::support::read_file_if_exists;
using autofailover::support::write_file_atomically;

const char* const kHaConf = "autofailover_ha.conf";

// CLOCK_BOOTTIME, the clock of autofailover.leader_lease_clock() on this host.
std::int64_t boot_clock_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void check_name(const std::string& what, const std::string& value) {
    static const std::regex name_re("[A-Za-z0-9_]{1,63}");
    if (!std::regex_match(value, name_re))
        throw CliError(ExitCode::BadArguments,
                       fmt::format("{} \"{}\": 1 to 63 letters, digits or _ expected", what, value));
}

std::string quote_conf(const std::string& value) {
    std::string out = "'";
    for (char c : value) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

// The sync key: the last monitor that led, and the standbys in synchronous
// replication with it (the only ones allowed to take over).
struct SyncState {
    std::string leader;
    std::vector<std::string> eligible;
    std::int64_t mod_revision = 0;  // 0: the key does not exist
};

std::string sync_json(const std::string& leader, const std::vector<std::string>& eligible) {
    return Json{{"leader", leader}, {"eligible", eligible}}.dump();
}

SyncState parse_sync(const std::optional<etcd::KeyValue>& kv) {
    SyncState s;
    if (!kv) return s;
    s.mod_revision = kv->mod_revision;
    try {
        Json j = Json::parse(kv->value);
        s.leader = j.value("leader", "");
        s.eligible = j.value("eligible", std::vector<std::string>{});
    } catch (const Json::exception&) {
        // An unreadable sync key lets nobody take over; the leader rewrites it.
    }
    return s;
}

struct Member {
    std::string name;
    std::string host;
    int port = 0;
};

std::optional<Member> parse_member(const etcd::KeyValue& kv, const std::string& prefix) {
    try {
        Json j = Json::parse(kv.value);
        return Member{kv.key.substr(prefix.size()), j.at("host").get<std::string>(), j.at("port").get<int>()};
    } catch (const Json::exception&) {
        return std::nullopt;
    }
}

Json setup_to_json(const MonitorSetup& s) {
    return Json{{"pgdata", s.pgdata},   {"pgport", s.pgport},     {"hostname", s.hostname},
                {"auth", s.auth},       {"ssl", s.ssl},           {"ssl_ca_file", s.ssl_ca_file},
                {"server_cert", s.server_cert}, {"server_key", s.server_key}, {"allow", s.allow},
                {"settings", s.settings}, {"pg_bindir", s.pg_bindir},
                {"start_timeout_s", s.start_timeout.count()}};
}

MonitorSetup setup_from_json(const Json& j) {
    MonitorSetup s;
    s.pgdata = j.at("pgdata").get<std::string>();
    s.pgport = j.at("pgport").get<int>();
    s.hostname = j.at("hostname").get<std::string>();
    s.auth = j.value("auth", "scram-sha-256");
    s.ssl = j.value("ssl", true);
    s.ssl_ca_file = j.value("ssl_ca_file", "");
    s.server_cert = j.value("server_cert", "");
    s.server_key = j.value("server_key", "");
    s.allow = j.value("allow", std::vector<std::string>{});
    s.settings = j.value("settings", std::vector<std::string>{});
    s.pg_bindir = j.value("pg_bindir", "");
    s.start_timeout = std::chrono::seconds(j.value("start_timeout_s", 60));
    s.replicated = true;
    return s;
}

void save_config(const MonitorHaConfig& c) {
    const MonitorHaTimeouts& t = c.timeouts;
    Json j{{"name", c.name},
           {"cluster", c.cluster},
           {"etcd", c.etcd},
           {"setup", setup_to_json(c.setup)},
           {"keep_etcd_leader_elsewhere", c.keep_etcd_leader_elsewhere},
           {"timeouts",
            {{"lease_ttl_ms", t.lease_ttl_ms},
             {"renew_period_ms", t.renew_period_ms},
             {"lease_margin_ms", t.lease_margin_ms},
             {"etcd_request_timeout_ms", t.etcd_request_timeout_ms},
             {"promote_timeout_ms", t.promote_timeout_ms}}}};
    const fs::path path = monitor_ha_config_path(c.setup.pgdata);
    fs::create_directories(path.parent_path());
    fs::permissions(path.parent_path(), fs::perms::owner_all);
    write_file_atomically(path.string(), j.dump(2) + "\n", 0600);
}

void check_timeouts(const MonitorHaTimeouts& t) {
    if (t.lease_ttl_ms < 2000 || t.lease_ttl_ms % 1000 != 0)
        throw CliError(ExitCode::BadArguments, "lease_ttl_ms: whole seconds, at least 2000 (etcd's minimum TTL)");
    if (t.renew_period_ms < 50 || t.lease_margin_ms < 100 ||
        t.renew_period_ms + t.etcd_request_timeout_ms + t.lease_margin_ms >= t.lease_ttl_ms)
        throw CliError(ExitCode::BadArguments,
                       "renew_period_ms + etcd_request_timeout_ms + lease_margin_ms must stay below lease_ttl_ms "
                       "(renew_period_ms >= 50, lease_margin_ms >= 100)");
}

std::string local_conninfo(const MonitorSetup& s, const char* dbname) {
    return fmt::format("host={} port={} dbname={} application_name=autofailover_agent connect_timeout=2 "
                       "options='-c statement_timeout=5000'",
                       monitor_socket_dir(s), s.pgport, dbname);
}

std::string source_conninfo(const Member& leader, const std::string& user) {
    return fmt::format("host={} port={} user={} dbname=postgres connect_timeout=5", conninfo_quote(leader.host),
                       leader.port, conninfo_quote(user));
}

std::string primary_conninfo(const Member& leader, const std::string& user, const std::string& my_name) {
    return fmt::format("host={} port={} user={} application_name={} connect_timeout=2", conninfo_quote(leader.host),
                       leader.port, conninfo_quote(user), my_name);
}

void write_ha_conf(const MonitorSetup& s, const std::string& content) {
    write_file_atomically((fs::path(s.pgdata) / kHaConf).string(),
                          "# Written by the monitor agent (autoctl run-monitor); docs/monitor-ha.md.\n" + content, 0600);
}

std::string standby_ha_conf(const Member& leader, const std::string& user, const std::string& name) {
    return fmt::format("primary_conninfo = {}\nrecovery_target_timeline = 'latest'\n",
                       quote_conf(primary_conninfo(leader, user, name)));
}

void become_standby_files(const MonitorHaConfig& c, const Member& leader) {
    write_monitor_files(c.setup);
    write_ha_conf(c.setup, standby_ha_conf(leader, monitor_os_user(), c.name));
    write_file_atomically((fs::path(c.setup.pgdata) / "standby.signal").string(), "", 0600);
}

void base_backup(const MonitorHaConfig& c, const Member& leader) {
    const fs::path pgdata(c.setup.pgdata);
    if (fs::exists(pgdata))
        for (const auto& entry : fs::directory_iterator(pgdata)) fs::remove_all(entry.path());
    fs::create_directories(pgdata);
    fs::permissions(pgdata, fs::perms::owner_all);
    run_operator_child_or_throw({monitor_program(c.setup, "pg_basebackup"), "-D", c.setup.pgdata, "-d",
                                 source_conninfo(leader, monitor_os_user()), "-X", "stream", "-c", "fast"},
                                "The standby monitor needs a replication connection to the leader as the OS user "
                                "(pg_hba.conf of a monitor created with --etcd allows it from its --allow networks).");
}

// ---------------------------------------------------------------------------
// The agent.
// ---------------------------------------------------------------------------
class Agent {
public:
    explicit Agent(MonitorHaConfig config)
        : c_(std::move(config)),
          etcd_(c_.etcd, std::chrono::milliseconds(c_.timeouts.etcd_request_timeout_ms)),
          placement_(etcd_, c_.name),
          prefix_("/autofailover/" + c_.cluster + "/"),
          os_user_(monitor_os_user()) {}

    void round();
    void release();  // on SIGTERM: fence, give the key back, stop Postgres

private:
    // etcd
    bool renew_etcd_lease(std::int64_t send_ns);
    bool write_sync(const std::vector<std::string>& eligible);
    // local Postgres
    pqxx::connection& local();
    void drop_local() { conn_.reset(); }
    bool running() { return monitor_server_running(c_.setup); }
    bool in_recovery();
    bool renew_postgres_lease(bool fence);
    // roles
    void lead(bool recovering, const SyncState& sync);
    void follow(const std::string& leader_name, bool recovering);
    void campaign(bool recovering, const SyncState& sync);
    void rejoin(const Member& leader);
    void manage_sync(const SyncState& sync);
    void step_down(const char* why);

    MonitorHaConfig c_;
    etcd::Client etcd_;
    EtcdLeaderPlacement placement_;
    std::string prefix_;
    std::string os_user_;
    std::optional<pqxx::connection> conn_;
    std::int64_t lease_id_ = 0;
    std::int64_t last_send_ns_ = 0;   // send time of the last successful keepalive
    std::int64_t last_ttl_s_ = 0;
    bool leading_ = false;
    bool etcd_down_logged_ = false;
    std::string ha_conf_;             // what this agent last wrote into autofailover_ha.conf
    std::map<std::string, autofailover::Lsn> sync_since_;  // standby → WAL position when it became synchronous
};

pqxx::connection& Agent::local() {
    if (!conn_ || !conn_->is_open()) conn_.emplace(local_conninfo(c_.setup, "autofailover"));
    return *conn_;
}

bool Agent::in_recovery() {
    if (!running()) return fs::exists(fs::path(c_.setup.pgdata) / "standby.signal");
    pqxx::nontransaction tx(local());
    return tx.exec1("SELECT pg_catalog.pg_is_in_recovery()")[0].as<bool>();
}

bool Agent::renew_postgres_lease(bool fence) {
    pqxx::nontransaction tx(local());
    if (fence) return tx.exec1("SELECT autofailover.renew_leader_lease(0)")[0].as<bool>();
    const long valid_for_ms = last_ttl_s_ * 1000 - c_.timeouts.lease_margin_ms;
    return tx
        .exec_params1("SELECT autofailover.renew_leader_lease($1, $2)", static_cast<int>(valid_for_ms), last_send_ns_)[0]
        .as<bool>();
}

bool Agent::renew_etcd_lease(std::int64_t send_ns) {
    if (lease_id_ != 0) {
        const std::int64_t ttl = etcd_.keepalive(lease_id_);
        if (ttl > 0) {
            last_send_ns_ = send_ns;
            last_ttl_s_ = ttl;
            return true;
        }
        log_warn("monitor={} etcd lease {} expired", c_.name, lease_id_);
        lease_id_ = 0;
        if (leading_) step_down("its etcd lease expired");
    }
    const etcd::LeaseGrant grant = etcd_.grant_lease(c_.timeouts.lease_ttl_ms / 1000);
    lease_id_ = grant.id;
    last_send_ns_ = send_ns;
    last_ttl_s_ = grant.ttl_seconds;
    etcd_.put(prefix_ + "members/" + c_.name,
              Json{{"host", c_.setup.hostname}, {"port", c_.setup.pgport}, {"pgdata", c_.setup.pgdata}}.dump(),
              lease_id_);
    log_info("monitor={} etcd lease {} granted (TTL {} s)", c_.name, lease_id_, grant.ttl_seconds);
    return true;
}

// Only while this agent's lease holds the leader key.
bool Agent::write_sync(const std::vector<std::string>& eligible) {
    return etcd_.txn({{prefix_ + "leader", etcd::Compare::Target::Value, 0, c_.name}},
                     {{prefix_ + "sync", sync_json(c_.name, eligible), 0, false}});
}

void Agent::step_down(const char* why) {
    try {
        if (running()) renew_postgres_lease(true);
    } catch (const std::exception& e) {
        log_warn("monitor={} could not fence its Postgres ({}); its lease runs out by itself", c_.name, e.what());
    }
    leading_ = false;
    placement_.forget();
    log_warn("monitor={} role=leader→none reason={}", c_.name, why);
}

void Agent::round() {
    const std::int64_t send_ns = boot_clock_ns();
    std::optional<etcd::KeyValue> leader;
    SyncState sync;
    try {
        renew_etcd_lease(send_ns);
        leader = etcd_.get(prefix_ + "leader");
        sync = parse_sync(etcd_.get(prefix_ + "sync"));
        if (etcd_down_logged_) log_info("monitor={} etcd reachable again", c_.name);
        etcd_down_logged_ = false;
    } catch (const etcd::EtcdError& e) {
        // The leader's Postgres lease runs out by itself: no decision without etcd.
        if (!etcd_down_logged_) log_warn("monitor={} etcd unreachable: {}", c_.name, e.what());
        etcd_down_logged_ = true;
        if (leading_ && boot_clock_ns() >= last_send_ns_ + last_ttl_s_ * 1000000000 - c_.timeouts.lease_margin_ms * 1000000LL)
            leading_ = false;
        // A standby may run without etcd; a primary is started only under the leader key.
        if (!running() && fs::exists(fs::path(c_.setup.pgdata) / "standby.signal")) start_monitor_server(c_.setup);
        return;
    } catch (const std::exception& e) {
        log_warn("monitor={} unexpected answer from etcd: {}", c_.name, e.what());
        return;
    }

    const bool ours = leader && leader->value == c_.name && leader->lease == lease_id_;
    if (ours) {
        if (!running()) start_monitor_server(c_.setup);
        lead(in_recovery(), sync);
        return;
    }
    if (leading_) step_down(leader ? "another monitor holds the leader key" : "the leader key is gone");
    if (leader) {
        follow(leader->value, in_recovery());
        return;
    }
    campaign(in_recovery(), sync);
}

void Agent::lead(bool recovering, const SyncState& sync) {
    if (recovering) {
        log_info("monitor={} promoting its Postgres", c_.name);
        drop_local();
        pqxx::work tx(local());
        tx.exec("SET LOCAL statement_timeout = 0");
        const bool promoted = tx.exec_params1("SELECT pg_catalog.pg_promote(true, $1)",
                                              std::max(1, c_.timeouts.promote_timeout_ms / 1000))[0]
                                  .as<bool>();
        tx.commit();
        if (!promoted) throw std::runtime_error("pg_promote did not finish within promote_timeout_ms");
        ha_conf_.clear();
        sync_since_.clear();
    }
    // The lease first: it is what lets the new leader decide (takeover time), and it is bounded by this round's
    // keepalive whatever comes after it.
    const bool valid = renew_postgres_lease(false);
    if (recovering) {
        // pg_control names the new timeline only after a checkpoint; PostgreSQL 15's
        // pg_rewind of this monitor, should it die soon, needs it there.
        pqxx::nontransaction checkpoint(local());
        checkpoint.exec("CHECKPOINT");
    }
    if (!leading_) {
        leading_ = true;
        log_info("monitor={} role=leader lease_valid={} (TTL {} s, margin {} ms)", c_.name, valid, last_ttl_s_,
                 c_.timeouts.lease_margin_ms);
    }
    manage_sync(sync);
    if (c_.keep_etcd_leader_elsewhere) placement_.keep_leader_elsewhere();
}

void Agent::campaign(bool recovering, const SyncState& sync) {
    // Only the last leader or a standby that was synchronous with it may lead:
    // anyone else could miss goals keepers already acted on. A new cluster has
    // no sync key: its first (primary) monitor leads.
    bool eligible = false;
    if (sync.mod_revision == 0)
        eligible = !recovering;
    else
        eligible = sync.leader == c_.name ||
                   std::find(sync.eligible.begin(), sync.eligible.end(), c_.name) != sync.eligible.end();
    if (!eligible) return;
    if (!running()) start_monitor_server(c_.setup);
    const std::vector<std::string> keep =
        sync.leader == c_.name ? sync.eligible : std::vector<std::string>{};
    const bool won = etcd_.txn(
        {{prefix_ + "leader", etcd::Compare::Target::CreateRevision, 0, ""},
         {prefix_ + "sync", etcd::Compare::Target::ModRevision, sync.mod_revision, ""}},
        {{prefix_ + "leader", c_.name, lease_id_, false}, {prefix_ + "sync", sync_json(c_.name, keep), 0, false}});
    if (!won) return;
    log_info("monitor={} won the leader key (was {})", c_.name, recovering ? "a standby" : "a primary");
    lead(recovering, parse_sync(etcd_.get(prefix_ + "sync")));
}

void Agent::follow(const std::string& leader_name, bool recovering) {
    const auto kv = etcd_.get(prefix_ + "members/" + leader_name);
    if (!kv) return;
    const auto leader = parse_member(*kv, prefix_ + "members/");
    if (!leader) return;
    if (!running() || !recovering) {
        rejoin(*leader);
        return;
    }
    const std::string conf = standby_ha_conf(*leader, os_user_, c_.name);
    if (conf == ha_conf_) return;
    write_ha_conf(c_.setup, conf);
    pqxx::nontransaction tx(local());
    tx.exec("SELECT pg_catalog.pg_reload_conf()");
    ha_conf_ = conf;
    log_info("monitor={} role=standby following {} at {}:{}", c_.name, leader->name, leader->host, leader->port);
}

void Agent::rejoin(const Member& leader) {
    log_info("monitor={} rejoining as a standby of {} at {}:{}", c_.name, leader.name, leader.host, leader.port);
    if (running()) {
        try {
            renew_postgres_lease(true);
        } catch (const std::exception&) {
        }
        drop_local();
        run_operator_child_or_throw(
            {monitor_program(c_.setup, "pg_ctl"), "-D", c_.setup.pgdata, "-m", "fast", "-w", "stop"}, "");
    }
    drop_local();
    const bool was_standby = fs::exists(fs::path(c_.setup.pgdata) / "standby.signal");
    bool rewound = false;
    if (!was_standby) {
        // pg_rewind runs crash recovery first when the server was not shut down cleanly.
        ChildResult rewind = run_operator_child({monitor_program(c_.setup, "pg_rewind"), "-D", c_.setup.pgdata,
                                                 "--source-server=" + source_conninfo(leader, os_user_)});
        if (rewind.exit_status() != 0) {
            std::string last = rewind.output.substr(rewind.output.size() > 300 ? rewind.output.size() - 300 : 0);
            std::replace(last.begin(), last.end(), '\n', ' ');
            log_warn("monitor={} pg_rewind failed ({}); taking a fresh base backup", c_.name, last);
            base_backup(c_, leader);
        } else {
            rewound = true;
        }
    }
    become_standby_files(c_, leader);
    ha_conf_ = standby_ha_conf(leader, os_user_, c_.name);
    sync_since_.clear();
    try {
        start_monitor_server(c_.setup);
    } catch (const CliError& e) {
        if (!rewound) throw;
        // A rewound directory recovery cannot replay (e.g. a timeline pg_rewind misjudged): clone instead.
        log_warn("monitor={} the rewound Postgres does not start; taking a fresh base backup", c_.name);
        base_backup(c_, leader);
        become_standby_files(c_, leader);
        start_monitor_server(c_.setup);
    }
    log_info("monitor={} role=standby of {} (started)", c_.name, leader.name);
}

void Agent::manage_sync(const SyncState& sync) {
    pqxx::nontransaction tx(local());
    const pqxx::result rows = tx.exec(
        "SELECT application_name, sync_state, coalesce(flush_lsn, '0/0')::text, "
        "pg_catalog.pg_current_wal_lsn()::text FROM pg_catalog.pg_stat_replication WHERE state = 'streaming'");
    static const std::regex name_re("[A-Za-z0-9_]{1,63}");
    std::map<std::string, std::pair<std::string, autofailover::Lsn>> streaming;
    autofailover::Lsn current = 0;
    for (const auto& row : rows) {
        const std::string name = row[0].as<std::string>();
        current = autofailover::parse_lsn(row[3].as<std::string>()).value_or(0);
        if (!std::regex_match(name, name_re) || name == c_.name) continue;
        streaming[name] = {row[1].as<std::string>(), autofailover::parse_lsn(row[2].as<std::string>()).value_or(0)};
    }
    std::vector<std::string> eligible = sync.leader == c_.name ? sync.eligible : std::vector<std::string>{};
    bool changed = sync.leader != c_.name;
    // 1. A standby that stopped streaming loses the right to take over first (etcd),
    //    then leaves synchronous_standby_names: commits never wait on it once it may not win.
    for (auto it = eligible.begin(); it != eligible.end();) {
        if (streaming.count(*it) == 0) {
            log_warn("monitor={} standby monitor {} not streaming: it may no longer take over", c_.name, *it);
            it = eligible.erase(it);
            changed = true;
        } else {
            ++it;
        }
    }
    if (changed && !write_sync(eligible)) throw etcd::EtcdError("the leader key changed hands while writing sync");
    changed = false;
    // 2. Every streaming standby is synchronous (all of them: whichever wins has every acknowledged goal).
    std::set<std::string> names(eligible.begin(), eligible.end());
    for (const auto& [name, _] : streaming) names.insert(name);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + fmt::format("\"{}\"", n);
    const std::string sync_names = names.empty() ? "" : fmt::format("FIRST {} ({})", names.size(), list);
    const std::string conf = fmt::format("synchronous_standby_names = {}\n", quote_conf(sync_names));
    if (conf != ha_conf_) {
        write_ha_conf(c_.setup, conf);
        tx.exec("SELECT pg_catalog.pg_reload_conf()");
        ha_conf_ = conf;
        log_info("monitor={} synchronous_standby_names = '{}'", c_.name, sync_names);
    }
    // 3. A synchronous standby that has all WAL written before it became synchronous may take over.
    for (const auto& [name, st] : streaming) {
        if (std::find(eligible.begin(), eligible.end(), name) != eligible.end()) continue;
        if (st.first != "sync" && st.first != "quorum") {
            sync_since_.erase(name);
            continue;
        }
        auto since = sync_since_.find(name);
        if (since == sync_since_.end()) {
            sync_since_[name] = current;
            continue;
        }
        if (st.second >= since->second) {
            eligible.push_back(name);
            changed = true;
            log_info("monitor={} standby monitor {} is synchronous: it may take over", c_.name, name);
        }
    }
    if (changed && !write_sync(eligible)) throw etcd::EtcdError("the leader key changed hands while writing sync");
}

void Agent::release() {
    if (leading_) {
        step_down("the agent stops");
        try {
            etcd_.txn({{prefix_ + "leader", etcd::Compare::Target::Value, 0, c_.name}},
                      {{prefix_ + "leader", "", 0, true}});
        } catch (const std::exception&) {
        }
    }
    try {
        if (lease_id_ != 0) etcd_.revoke(lease_id_);
    } catch (const std::exception&) {
    }
    drop_local();
    if (running())
        run_operator_child({monitor_program(c_.setup, "pg_ctl"), "-D", c_.setup.pgdata, "-m", "fast", "-w", "stop"});
}

}  // namespace

std::string monitor_ha_config_path(const std::string& pgdata) {
    fs::path p = fs::path(pgdata).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.string() + ".monitor/monitor.json";
}

bool has_monitor_ha_config(const std::string& pgdata) {
    return fs::exists(monitor_ha_config_path(fs::absolute(pgdata).string()));
}

MonitorHaConfig load_monitor_ha_config(const std::string& pgdata) {
    const std::string path = monitor_ha_config_path(fs::absolute(pgdata).string());
    auto text = read_file_if_exists(path);
    if (!text)
        throw CliError(ExitCode::BadArguments,
                       fmt::format("{} does not exist: {} is not a replicated monitor (create monitor --etcd)", path,
                                   pgdata));
    try {
        Json j = Json::parse(*text);
        MonitorHaConfig c;
        c.name = j.at("name").get<std::string>();
        c.cluster = j.at("cluster").get<std::string>();
        c.etcd = j.at("etcd").get<std::vector<std::string>>();
        c.setup = setup_from_json(j.at("setup"));
        c.keep_etcd_leader_elsewhere = j.value("keep_etcd_leader_elsewhere", true);
        const Json& t = j.value("timeouts", Json::object());
        MonitorHaTimeouts d;
        c.timeouts.lease_ttl_ms = t.value("lease_ttl_ms", d.lease_ttl_ms);
        c.timeouts.renew_period_ms = t.value("renew_period_ms", d.renew_period_ms);
        c.timeouts.lease_margin_ms = t.value("lease_margin_ms", d.lease_margin_ms);
        c.timeouts.etcd_request_timeout_ms = t.value("etcd_request_timeout_ms", d.etcd_request_timeout_ms);
        c.timeouts.promote_timeout_ms = t.value("promote_timeout_ms", d.promote_timeout_ms);
        check_timeouts(c.timeouts);
        return c;
    } catch (const Json::exception& e) {
        throw CliError(ExitCode::BadArguments, fmt::format("{}: {}", path, e.what()));
    }
}

MonitorUris create_replicated_monitor(MonitorHaConfig& c, const std::string& standby_of) {
    check_name("--name", c.name);
    check_name("--monitor-cluster", c.cluster);
    check_timeouts(c.timeouts);
    c.setup.replicated = true;
    c.setup.pgdata = fs::absolute(c.setup.pgdata).lexically_normal().string();
    if (c.setup.pgdata.size() > 1 && c.setup.pgdata.back() == '/') c.setup.pgdata.pop_back();
    etcd::Client etcd(c.etcd, std::chrono::milliseconds(c.timeouts.etcd_request_timeout_ms));
    const std::string prefix = "/autofailover/" + c.cluster + "/";
    std::optional<etcd::KeyValue> leader;
    try {
        leader = etcd.get(prefix + "leader");
    } catch (const etcd::EtcdError& e) {
        throw CliError(ExitCode::MonitorError, fmt::format("cannot reach etcd: {}", e.what()));
    }
    if (standby_of.empty()) {
        if (leader && leader->value != c.name)
            throw CliError(ExitCode::BadArguments,
                           fmt::format("monitor {} already leads cluster {}: create this one with --standby-of",
                                       leader->value, c.cluster));
        MonitorUris uris = create_monitor(c.setup);
        save_config(c);
        return uris;
    }
    // A standby: a copy of the leader, then this host's own files.
    static const std::regex host_re(R"((?:^|\s)host=([A-Za-z0-9._:-]+))"), port_re(R"((?:^|\s)port=([0-9]{1,5}))");
    std::smatch host, port;
    if (!std::regex_search(standby_of, host, host_re) || !std::regex_search(standby_of, port, port_re))
        throw CliError(ExitCode::BadArguments, "--standby-of: expected 'host=H port=P' of the leader monitor");
    const Member source{"leader", host[1].str(), std::stoi(port[1].str())};
    const fs::path pgdata(c.setup.pgdata);
    if (fs::exists(pgdata / "PG_VERSION")) {
        if (!fs::exists(pgdata / "standby.signal"))
            throw CliError(ExitCode::BadArguments,
                           fmt::format("{} holds a primary: give an empty directory to --pgdata", c.setup.pgdata));
    } else {
        if (fs::exists(pgdata) && !fs::is_empty(pgdata))
            throw CliError(ExitCode::BadArguments,
                           fmt::format("{} exists and is not empty: give an empty or missing directory",
                                       c.setup.pgdata));
        std::cerr << fmt::format("autoctl: base backup of the leader monitor {}:{} into {}\n", source.host,
                                 source.port, c.setup.pgdata);
        base_backup(c, source);
    }
    fs::remove(pgdata / "server.crt");  // the leader's certificate names the leader
    fs::remove(pgdata / "server.key");
    become_standby_files(c, source);
    if (!monitor_server_running(c.setup)) start_monitor_server(c.setup);
    save_config(c);
    return monitor_uris(c.setup);
}

int run_monitor_agent(const std::string& pgdata) {
    MonitorHaConfig config = load_monitor_ha_config(pgdata);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const auto period = std::chrono::milliseconds(config.timeouts.renew_period_ms);
    log_info("monitor={} agent started: cluster {}, etcd {}, lease TTL {} ms, renew every {} ms", config.name,
             config.cluster, fmt::join(config.etcd, ","), config.timeouts.lease_ttl_ms, period.count());
    Agent agent(config);
    for (;;) {
        const auto started = std::chrono::steady_clock::now();
        try {
            agent.round();
        } catch (const std::exception& e) {
            // Never dies on one bad round: the lease inside Postgres protects the formation meanwhile.
            log_error("monitor={} round failed: {}", config.name, e.what());
        }
        auto left = period - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        if (left.count() < 1) left = std::chrono::milliseconds(1);
        const timespec wait{static_cast<time_t>(left.count() / 1000), static_cast<long>((left.count() % 1000) * 1000000)};
        const int sig = sigtimedwait(&stop_signals, nullptr, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("monitor={} agent stopping: releasing the leadership, stopping Postgres", config.name);
            agent.release();
            return 0;
        }
    }
}

void show_monitors(const std::vector<std::string>& endpoints, const std::string& cluster, int request_timeout_ms,
                   bool json) {
    etcd::Client etcd(endpoints, std::chrono::milliseconds(request_timeout_ms));
    const std::string prefix = "/autofailover/" + cluster + "/";
    std::optional<etcd::KeyValue> leader;
    SyncState sync;
    std::vector<etcd::KeyValue> members;
    try {
        leader = etcd.get(prefix + "leader");
        sync = parse_sync(etcd.get(prefix + "sync"));
        members = etcd.get_prefix(prefix + "members/");
    } catch (const etcd::EtcdError& e) {
        throw CliError(ExitCode::MonitorError, fmt::format("cannot reach etcd: {}", e.what()));
    }
    const std::string user = monitor_os_user();
    struct Row {
        Member m;
        std::string role = "unreachable";
        std::optional<autofailover::Lsn> lsn;
        std::optional<bool> lease_valid;
    };
    std::vector<Row> rows;
    autofailover::Lsn leader_lsn = 0;
    for (const auto& kv : members) {
        auto m = parse_member(kv, prefix + "members/");
        if (!m) continue;
        Row row;
        row.m = *m;
        try {
            pqxx::connection conn(fmt::format("host={} port={} user={} dbname=autofailover connect_timeout=2",
                                              conninfo_quote(m->host), m->port, conninfo_quote(user)));
            pqxx::nontransaction tx(conn);
            auto r = tx.exec1(
                "SELECT pg_catalog.pg_is_in_recovery(), CASE WHEN pg_catalog.pg_is_in_recovery() "
                "THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END::text, "
                "(SELECT valid FROM autofailover.leader_lease())");
            row.role = r[0].as<bool>() ? "standby" : "primary";
            row.lsn = autofailover::parse_lsn(r[1].as<std::string>(""));
            if (!r[0].as<bool>()) {
                row.lease_valid = r[2].as<bool>(false);
                if (row.lsn) leader_lsn = std::max(leader_lsn, *row.lsn);
            }
        } catch (const std::exception&) {
        }
        rows.push_back(row);
    }
    auto lag = [&](const Row& r) -> std::optional<long long> {
        if (r.role != "standby" || !r.lsn || leader_lsn == 0) return std::nullopt;
        return leader_lsn > *r.lsn ? static_cast<long long>(leader_lsn - *r.lsn) : 0LL;
    };
    auto eligible = [&](const std::string& n) {
        return std::find(sync.eligible.begin(), sync.eligible.end(), n) != sync.eligible.end();
    };
    const std::string holder = leader ? leader->value : "";
    if (json) {
        Json out{{"cluster", cluster}, {"leader", holder.empty() ? Json(nullptr) : Json(holder)},
                 {"monitors", Json::array()}};
        for (const auto& r : rows) {
            auto l = lag(r);
            out["monitors"].push_back(Json{{"name", r.m.name},
                                           {"host", r.m.host},
                                           {"port", r.m.port},
                                           {"role", r.m.name == holder ? "leader" : r.role},
                                           {"postgres", r.role},
                                           {"lease_valid", r.lease_valid ? Json(*r.lease_valid) : Json(nullptr)},
                                           {"lag_bytes", l ? Json(*l) : Json(nullptr)},
                                           {"may_take_over", eligible(r.m.name)}});
        }
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("cluster {}: leader {}\n", cluster, holder.empty() ? "(none)" : holder);
    std::cout << fmt::format("{:<16} {:<22} {:<8} {:<12} {:<11} {:>10} {}\n", "name", "address", "role", "postgres",
                             "lease", "lag", "may take over");
    for (const auto& r : rows) {
        auto l = lag(r);
        std::cout << fmt::format("{:<16} {:<22} {:<8} {:<12} {:<11} {:>10} {}\n", r.m.name,
                                 fmt::format("{}:{}", r.m.host, r.m.port), r.m.name == holder ? "leader" : "-", r.role,
                                 r.lease_valid ? (*r.lease_valid ? "valid" : "expired") : "-",
                                 l ? fmt::format("{} B", *l) : "-", eligible(r.m.name) ? "yes" : "no");
    }
}

}  // namespace autoctl
