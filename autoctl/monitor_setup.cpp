#include "autoctl/monitor_setup.h"

#include "support/child_process.h"
#include "autoctl/exit_codes.h"

#include "support/atomic_file.h"
#include "keeper/keeper.h"
#include "keeper/keeper_config.h"
#include "keeper/replication_auth.h"

#include <fmt/format.h>
#include <pqxx/pqxx>

#include <arpa/inet.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using autofailover::support::ChildResult;
using autofailover::support::run_operator_child;
using autofailover::support::run_operator_child_or_throw;

namespace autoctl {

namespace {

namespace keeper = autofailover::keeper;

const char* const kMonitorDatabase = "autofailover";

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Unique temp name + fsync + rename (support/atomic_file.h); every file here is private to the OS user.
void write_file(const fs::path& path, const std::string& content) {
    try {
        autofailover::support::write_file_atomically(path.string(), content, 0600);
    } catch (const std::exception& e) {
        throw CliError(ExitCode::LocalPostgresError, e.what());
    }
}

// The addresses `hostname` resolves to, so pg_hba can name them (pg_hba host
// names would need reverse DNS to match; addresses always do).
std::set<std::string> addresses_of(const std::string& hostname) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(hostname.c_str(), nullptr, &hints, &found);
    if (rc != 0)
        throw CliError(ExitCode::BadArguments,
                       fmt::format("--hostname {} does not resolve: {}. Give an address (e.g. 127.0.0.1) or a "
                                   "name in /etc/hosts or DNS.",
                                   hostname, ::gai_strerror(rc)));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
    std::set<std::string> out;
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {0};
        const void* raw = a->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                                                  : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
        if (::inet_ntop(a->ai_family, raw, text, sizeof text) != nullptr)
            out.insert(fmt::format("{}/{}", text, a->ai_family == AF_INET ? 32 : 128));
    }
    return out;
}

void set_up_certificate(const MonitorSetup& s) {
    const fs::path pgdata(s.pgdata);
    try {
        if (!s.ssl_ca_file.empty())
            keeper::install_ca_signed_certificate(s.ssl_ca_file, s.server_cert, s.server_key,
                                                  (pgdata / "root.crt").string(), (pgdata / "server.crt").string(),
                                                  (pgdata / "server.key").string());
        else
            keeper::create_self_signed_certificate((pgdata / "server.crt").string(), (pgdata / "server.key").string(),
                                                   s.hostname);
    } catch (const keeper::KeeperError& e) {
        throw CliError(static_cast<ExitCode>(e.exit_code()), e.what());
    }
}

std::string quote_conf_value(const std::string& value) {
    std::string out = "'";
    for (char c : value) out += (c == '\'') ? std::string("''") : std::string(1, c);
    return out + "'";
}

std::string autofailover_conf(const MonitorSetup& s) {
    std::string conf = "# Written by autoctl create monitor; included from postgresql.conf.\n";
    conf += "shared_preload_libraries = 'autofailover'\n";
    conf += fmt::format("listen_addresses = {}\n", quote_conf_value(s.hostname));
    conf += fmt::format("port = {}\n", s.pgport);
    // The default socket directory (/var/run/postgresql) belongs to the postgres
    // OS user; the monitor keeps its socket in its own data directory.
    conf += fmt::format("unix_socket_directories = {}\n", quote_conf_value(monitor_socket_dir(s)));
    conf += fmt::format("autofailover.database = '{}'\n", kMonitorDatabase);
    if (s.ssl) conf += "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
    if (s.replicated) {
        // docs/monitor-ha.md: decisions only under the leader lease; pg_rewind needs
        // wal_log_hints; the agent writes primary_conninfo / synchronous_standby_names
        // into autofailover_ha.conf.
        conf += "autofailover.require_leader_lease = on\nwal_log_hints = on\nhot_standby = on\n"
                "wal_keep_size = '1GB'\ninclude_if_exists 'autofailover_ha.conf'\n";
    }
    static const std::regex name_re(R"([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?)");
    for (const std::string& setting : s.settings) {
        auto eq = setting.find('=');
        std::string name = setting.substr(0, eq);
        if (eq == std::string::npos || !std::regex_match(name, name_re))
            throw CliError(ExitCode::BadArguments,
                           fmt::format("--setting {}: expected name=value, e.g. --setting "
                                       "node_considered_unhealthy_timeout=2000",
                                       setting));
        if (name.find('.') == std::string::npos) name = "autofailover." + name;
        conf += fmt::format("{} = {}\n", name, quote_conf_value(setting.substr(eq + 1)));
    }
    return conf;
}

// Where keepers and operators may connect from: loopback, the addresses of --hostname, --allow.
std::set<std::string> allowed_sources(const MonitorSetup& s) {
    std::set<std::string> sources{"127.0.0.1/32", "::1/128"};
    for (const auto& a : addresses_of(s.hostname)) sources.insert(a);
    for (const auto& network : s.allow) sources.insert(parse_allowed_network(network));
    return sources;
}

// No line names the OS user's superuser role over TCP by itself: it logs in over the
// socket (peer). The +autofailover_operator lines admit it over TCP only with a password,
// which it has not unless the operator set one.
std::string pg_hba_conf(const MonitorSetup& s, const std::string& os_user) {
    std::string hba = "# Written by autoctl create monitor: keepers and operators reach database autofailover\n"
                      "# from loopback, the monitor's --hostname and the --allow networks only.\n";
    hba += fmt::format("local   all           {:<24} peer\n", os_user);
    hba += fmt::format("local   {:<12}  {:<24} peer\n", kMonitorDatabase, "+autofailover_operator");
    const std::set<std::string> sources = allowed_sources(s);
    // With SSL on, plain TCP connections find no line and are refused.
    const char* type = s.ssl ? "hostssl" : "host";
    for (const auto& src : sources) {
        hba += fmt::format("{:<7} {:<12}  {:<24} {:<20} {}\n", type, kMonitorDatabase, "autofailover_keeper", src,
                           s.auth);
        // Each node's keeper logs in as its own role, member of this group (docs/security.md).
        hba += fmt::format("{:<7} {:<12}  {:<24} {:<20} {}\n", type, kMonitorDatabase, "+autofailover_node_keepers",
                           src, s.auth);
        hba += fmt::format("{:<7} {:<12}  {:<24} {:<20} {}\n", type, kMonitorDatabase, "+autofailover_operator",
                           src, s.auth);
        // Replicated monitors: the other monitors' agents stream, rewind and clone as the OS user.
        if (s.replicated) {
            hba += fmt::format("{:<7} {:<12}  {:<24} {:<20} {}\n", type, "replication", os_user, src, s.auth);
            hba += fmt::format("{:<7} {:<12}  {:<24} {:<20} {}\n", type, "postgres", os_user, src, s.auth);
        }
    }
    return hba;
}

bool server_is_running(const MonitorSetup& s) {
    return run_operator_child({monitor_program(s, "pg_ctl"), "-D", s.pgdata, "status"}).exit_status() == 0;
}

void start_server(const MonitorSetup& s) {
    run_operator_child_or_throw({monitor_program(s, "pg_ctl"), "-D", s.pgdata, "-l", monitor_log_path(s.pgdata), "-w",
                                 "-t", std::to_string(s.start_timeout.count()), "start"},
                                fmt::format("See the server log {} for why the monitor did not start.",
                                            monitor_log_path(s.pgdata)));
}

std::string random_password() {
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    unsigned char bytes[18];
    if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes))
        throw CliError(ExitCode::LocalPostgresError, "cannot read /dev/urandom");
    std::string out;
    for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
    return out;
}

std::string local_conninfo(const MonitorSetup& s, const char* dbname) {
    return fmt::format("host={} port={} dbname={} application_name=autoctl", monitor_socket_dir(s), s.pgport,
                       dbname);
}

fs::path keeper_password_path(const MonitorSetup& s) { return fs::path(s.pgdata) / "autofailover_keeper.password"; }

// Creates the database, roles and extension that are missing; sets the keeper
// role's password (from the 0600 file, created once) when the auth mode needs one.
void complete_monitor_database(const MonitorSetup& s, const std::string& os_user) {
    try {
        {
            pqxx::connection admin(local_conninfo(s, "postgres"));
            pqxx::nontransaction tx(admin);
            if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", kMonitorDatabase).empty())
                tx.exec(fmt::format("CREATE DATABASE {}", tx.quote_name(kMonitorDatabase)));
        }
        pqxx::connection conn(local_conninfo(s, kMonitorDatabase));
        pqxx::work tx(conn);
        // The extension script creates the roles autofailover_keeper, autofailover_node_keepers
        // and autofailover_operator.
        tx.exec("CREATE EXTENSION IF NOT EXISTS autofailover");
        tx.exec(fmt::format("GRANT autofailover_operator TO {}", tx.quote_name(os_user)));
        // Only those roles may connect: LISTEN/NOTIFY cannot be revoked, CONNECT can (docs/security.md).
        tx.exec(fmt::format("REVOKE CONNECT ON DATABASE {} FROM PUBLIC", tx.quote_name(kMonitorDatabase)));
        tx.exec(fmt::format("GRANT CONNECT ON DATABASE {} TO autofailover_keeper, autofailover_node_keepers, "
                            "autofailover_operator",
                            tx.quote_name(kMonitorDatabase)));
        std::string password;
        if (s.auth != "trust") {
            // Kept in the data directory (mode 0600) so that a re-run keeps the
            // password the keepers already use instead of locking them out.
            const fs::path saved = keeper_password_path(s);
            if (fs::exists(saved)) {
                password = read_file(saved);
                password = password.substr(0, password.find('\n'));
            }
            if (password.empty()) {
                password = random_password();
                write_file(saved, password + "\n");  // created 0600, never readable by others
            }
        }
        tx.commit();
        // As a SCRAM verifier computed here: the plain password never reaches the server or its log.
        if (!password.empty())
            keeper::set_role_password(local_conninfo(s, kMonitorDatabase), "autofailover_keeper", password);
    } catch (const pqxx::sql_error& e) {
        throw CliError(ExitCode::LocalPostgresError,
                       fmt::format("setting up the monitor database failed: {}\nIs the autofailover extension "
                                   "installed (make -f Makefile.pgxs install)? Server log: {}",
                                   e.what(), monitor_log_path(s.pgdata)));
    } catch (const pqxx::broken_connection& e) {
        throw CliError(ExitCode::LocalPostgresError,
                       fmt::format("cannot connect to the new monitor through its socket in {}: {}", s.pgdata,
                                   e.what()));
    } catch (const keeper::KeeperError& e) {
        throw CliError(ExitCode::LocalPostgresError, e.what());
    }
}

// Percent-encodes what a URI query value may not hold as is ('/' stays, as libpq accepts it).
std::string uri_encode(const std::string& value) {
    std::string out;
    for (unsigned char c : value) {
        if (std::isalnum(c) || std::strchr("-._~/", c) != nullptr) out += static_cast<char>(c);
        else out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::string uri_host(const std::string& host) {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

std::string os_user_name() {
    const passwd* pw = ::getpwuid(::geteuid());
    if (pw == nullptr) throw CliError(ExitCode::LocalPostgresError, "cannot find the name of the current OS user");
    return pw->pw_name;
}

std::string parse_allowed_network(const std::string& text) {
    const auto slash = text.find('/');
    const std::string address = text.substr(0, slash);
    unsigned char raw[sizeof(in6_addr)] = {0};
    int family = AF_INET;
    if (::inet_pton(AF_INET, address.c_str(), raw) != 1) {
        family = AF_INET6;
        if (::inet_pton(AF_INET6, address.c_str(), raw) != 1)
            throw CliError(ExitCode::BadArguments,
                           fmt::format("--allow {}: expected a network in CIDR notation, e.g. 10.0.0.0/24 or "
                                       "fd00::/64",
                                       text));
    }
    const int max_bits = family == AF_INET ? 32 : 128;
    int bits = max_bits;
    if (slash != std::string::npos) {
        const std::string suffix = text.substr(slash + 1);
        if (suffix.empty() || suffix.size() > 3 || suffix.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(suffix) > max_bits)
            throw CliError(ExitCode::BadArguments,
                           fmt::format("--allow {}: the prefix length must be 0..{}", text, max_bits));
        bits = std::stoi(suffix);
    }
    // Host bits set (10.0.0.7/24) usually mean a typo for a narrower rule: refuse rather than widen.
    const int bytes = max_bits / 8;
    for (int i = 0; i < bytes; ++i) {
        const int keep = std::min(8, std::max(0, bits - 8 * i));
        const unsigned char mask = static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
        if ((raw[i] & ~mask) != 0)
            throw CliError(ExitCode::BadArguments,
                           fmt::format("--allow {}: host bits are set after /{}; give the network address", text,
                                       bits));
    }
    char canonical[INET6_ADDRSTRLEN] = {0};
    ::inet_ntop(family, raw, canonical, sizeof canonical);
    return fmt::format("{}/{}", canonical, bits);
}

std::string monitor_log_path(const std::string& pgdata) {
    return autofailover::support::server_log_path(fs::path(pgdata).lexically_normal().string());
}

MonitorUris create_monitor(const MonitorSetup& input) {
    if (::geteuid() == 0)
        throw CliError(ExitCode::BadArguments,
                       "refusing to run as root: PostgreSQL servers must belong to an unprivileged OS user. Run "
                       "as that user, e.g. `runuser -u autofailover -- autoctl create monitor ...`.");
    MonitorSetup s = input;
    s.pgdata = fs::absolute(s.pgdata).lexically_normal().string();
    if (!s.pgdata.empty() && s.pgdata.size() > 1 && s.pgdata.back() == '/') s.pgdata.pop_back();
    if (auto reason = keeper::unsafe_path_reason(s.pgdata))
        throw CliError(ExitCode::BadArguments, fmt::format("--pgdata {}: {}", s.pgdata, *reason));
    if (auto reason = keeper::invalid_hostname_reason(s.hostname))
        throw CliError(ExitCode::BadArguments, fmt::format("--hostname {}: {}", s.hostname, *reason));
    const std::string os_user = os_user_name();
    const fs::path pgdata(s.pgdata);
    for (const auto& network : s.allow) parse_allowed_network(network);  // refuse typos before initdb

    if (!fs::exists(pgdata / "PG_VERSION")) {
        if (fs::exists(pgdata) && !fs::is_empty(pgdata))
            throw CliError(ExitCode::BadArguments,
                           fmt::format("{} exists, is not empty and is not a PostgreSQL data directory. Give an "
                                       "empty or missing directory to --pgdata.",
                                       s.pgdata));
        std::cerr << fmt::format("autoctl: initdb {}\n", s.pgdata);
        run_operator_child_or_throw({monitor_program(s, "initdb"), "-D", s.pgdata, "--encoding=UTF8", "--locale=C",
                                     "--auth-local=peer", "--auth-host=reject", "--no-instructions"},
                                    "Check that the parent directory exists and belongs to the current OS user.");
    }
    write_monitor_files(s);

    if (server_is_running(s)) {
        run_operator_child_or_throw({monitor_program(s, "pg_ctl"), "-D", s.pgdata, "reload"}, "");
    } else {
        std::cerr << fmt::format("autoctl: starting the monitor on {}:{} (log: {})\n", s.hostname, s.pgport,
                                 monitor_log_path(s.pgdata));
        start_server(s);
    }
    complete_monitor_database(s, os_user);
    return monitor_uris(s);
}

std::string monitor_socket_dir(const MonitorSetup& s) {
    // A replicated monitor keeps its socket out of the data directory: pg_rewind
    // from a leader would try to copy the leader's socket file and fail.
    if (!s.replicated) return s.pgdata;
    fs::path p = fs::path(s.pgdata).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.string() + ".monitor";
}

void write_monitor_files(const MonitorSetup& s) {
    const fs::path pgdata(s.pgdata);
    if (s.replicated) {
        fs::create_directories(monitor_socket_dir(s));
        fs::permissions(monitor_socket_dir(s), fs::perms::owner_all);
    }
    // Also when a monitor created without SSL is re-run with it.
    if (s.ssl) set_up_certificate(s);
    write_file(pgdata / "autofailover.conf", autofailover_conf(s));
    const fs::path postgresql_conf = pgdata / "postgresql.conf";
    std::string main_conf = read_file(postgresql_conf);
    if (main_conf.find("include 'autofailover.conf'") == std::string::npos)
        write_file(postgresql_conf, main_conf + "\ninclude 'autofailover.conf'\n");
    write_file(pgdata / "pg_hba.conf", pg_hba_conf(s, os_user_name()));
}

bool monitor_server_running(const MonitorSetup& s) { return server_is_running(s); }
void start_monitor_server(const MonitorSetup& s) { start_server(s); }
std::string monitor_program(const MonitorSetup& s, const char* program) {
    return autofailover::support::pg_program(s.pg_bindir, program);
}
std::string monitor_os_user() { return os_user_name(); }

MonitorUris monitor_uris(const MonitorSetup& s) {
    std::string query;
    if (!s.ssl_ca_file.empty())
        query = "?sslmode=verify-full&sslrootcert=" + uri_encode(fs::absolute(s.ssl_ca_file).lexically_normal().string());
    else if (s.ssl)
        query = "?sslmode=require";
    MonitorUris uris;
    uris.keeper = fmt::format("postgres://autofailover_keeper@{}:{}/{}{}", uri_host(s.hostname), s.pgport,
                              kMonitorDatabase, query);
    if (s.auth != "trust") uris.keeper_password_file = keeper_password_path(s).string();
    // The OS user is the monitor's superuser and has no password: it logs in over the socket (peer).
    uris.operator_ = fmt::format("postgres:///{}?host={}&port={}", kMonitorDatabase,
                                 uri_encode(monitor_socket_dir(s)), s.pgport);
    for (const auto& source : allowed_sources(s)) uris.trusted_sources.push_back(source);
    return uris;
}

int run_monitor_in_foreground(const MonitorSetup& s) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    std::cerr << "autoctl: monitor running; SIGINT or SIGTERM stops it\n";
    const timespec poll_interval{1, 0};
    for (;;) {
        int sig = sigtimedwait(&stop_signals, nullptr, &poll_interval);
        if (sig == SIGINT || sig == SIGTERM) {
            std::cerr << "autoctl: stopping the monitor\n";
            run_operator_child_or_throw({monitor_program(s, "pg_ctl"), "-D", s.pgdata, "-m", "fast", "-w", "stop"}, "");
            return 0;
        }
        if (!server_is_running(s)) {
            std::cerr << fmt::format("autoctl: the monitor's postmaster exited; see {}\n", monitor_log_path(s.pgdata));
            return static_cast<int>(ExitCode::LocalPostgresError);
        }
    }
}

}  // namespace autoctl
