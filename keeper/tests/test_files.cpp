// Atomic writes, pg_hba block, postgresql.auto.conf edits, conninfo helpers.
#include "support/atomic_file.h"
#include "support/conninfo.h"
#include "keeper/keeper.h"
#include "keeper/postgres_files.h"
#include "keeper/postgres_tools.h"
#include "keeper/replication_auth.h"
#include "keeper/transition_actions.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <csignal>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace autofailover::keeper;
namespace support = autofailover::support;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    std::string path;
    TempDir() {
        char templ[] = "/tmp/keeper_unit_XXXXXX";
        path = ::mkdtemp(templ);
    }
    ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("atomic write replaces content and leaves no temp file", "[atomic]") {
    TempDir dir;
    const std::string file = dir.path + "/state.json";
    CHECK_FALSE(support::read_file_if_exists(file));
    support::write_file_atomically(file, "first");
    CHECK(support::read_file_if_exists(file) == std::optional<std::string>("first"));
    support::write_file_atomically(file, "second, longer content");
    CHECK(support::read_file_if_exists(file) == std::optional<std::string>("second, longer content"));
    CHECK_FALSE(fs::exists(file + ".tmp"));
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("atomic write: a stale temp file from a crash does not leak into the result", "[atomic]") {
    TempDir dir;
    const std::string file = dir.path + "/state.json";
    support::write_file_atomically(file, "committed");
    {
        // A crash between writing the temp file and the rename leaves this behind.
        std::FILE* f = std::fopen((file + ".tmp").c_str(), "w");
        std::fputs("half-writ", f);
        std::fclose(f);
    }
    CHECK(support::read_file_if_exists(file) == std::optional<std::string>("committed"));
    support::write_file_atomically(file, "next");
    CHECK(support::read_file_if_exists(file) == std::optional<std::string>("next"));
}

TEST_CASE("atomic write fails loudly when the directory is missing", "[atomic]") {
    CHECK_THROWS_WITH(support::write_file_atomically("/nonexistent-dir-xyz/state.json", "x"), Catch::Contains("cannot create"));
}

TEST_CASE("a data directory is synced through its links, and a missing one is an error", "[atomic]") {
    TempDir d;
    const std::string pgdata = d.path + "/pgdata";
    fs::create_directories(pgdata + "/pg_tblspc");
    fs::create_directories(d.path + "/wal");
    fs::create_directories(d.path + "/space");
    fs::create_symlink(d.path + "/wal", pgdata + "/pg_wal");
    fs::create_symlink(d.path + "/space", pgdata + "/pg_tblspc/16400");
    std::ofstream(pgdata + "/PG_VERSION") << "15\n";
    CHECK_NOTHROW(support::sync_data_directory(pgdata));
    CHECK_NOTHROW(support::fsync_directory(d.path));
    fs::remove(d.path + "/space");  // a dangling tablespace link: cannot be synced
    CHECK_THROWS_WITH(support::sync_data_directory(pgdata), Catch::Contains("16400"));
    CHECK_THROWS_WITH(support::sync_data_directory(d.path + "/missing"), Catch::Contains("cannot open"));
}

TEST_CASE("pg_hba block opens only the replication and probe roles to group and monitor hosts", "[hba]") {
    auto lines = hba_lines({"10.0.0.1", "10.0.0.2", "10.0.0.1"}, "10.0.0.9", "scram-sha-256");
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "host replication autofailover_replicator 10.0.0.1/32 scram-sha-256");
    CHECK(lines[1] == "host postgres autofailover_replicator 10.0.0.1/32 scram-sha-256");
    CHECK(lines[2] == "host replication autofailover_replicator 10.0.0.2/32 scram-sha-256");
    // The probe gets the same method: its authentication request proves the server runs.
    CHECK(lines[4] == "host postgres autofailover_monitor 10.0.0.9/32 scram-sha-256");
    for (const auto& l : lines) CHECK(l.find(" all ") == std::string::npos);
    for (const auto& l : lines) CHECK(l.find("trust") == std::string::npos);
    auto local = hba_lines({"localhost"}, "", "trust");
    CHECK(local.size() == 4);
}

TEST_CASE("a group host that is no address or host name gets no pg_hba line", "[hba][security]") {
    // Review #4: a node registered with host 'all' or 'samenet' opened replication to everybody.
    const std::vector<std::string> hostile = {"all",       "samenet", "samehost", ".example.com", "+admins",
                                              "@hosts",    "10.0.0.0/8", "a b",   "x\nhost all all 0.0.0.0/0 trust"};
    std::vector<std::string> hosts = {"10.0.0.1"};
    hosts.insert(hosts.end(), hostile.begin(), hostile.end());
    auto lines = hba_lines(hosts, "10.0.0.9", "trust");
    std::vector<std::string> rules;
    for (const auto& l : lines)
        if (l.rfind("#", 0) != 0) rules.push_back(l);
    REQUIRE(rules.size() == 3);
    CHECK(rules[0] == "host replication autofailover_replicator 10.0.0.1/32 trust");
    CHECK(rules[1] == "host postgres autofailover_replicator 10.0.0.1/32 trust");
    CHECK(rules[2] == "host postgres autofailover_monitor 10.0.0.9/32 trust");
    CHECK(hosts_refused_by_hba(hosts) == hostile);
    // Each refused host is named in a comment, made printable: no line break gets through.
    CHECK(lines.size() == 3 + hostile.size());
    for (const auto& l : lines) CHECK(l.find('\n') == std::string::npos);
    CHECK(std::count(lines.begin(), lines.end(), "# refused group host: x?host?all?all?0.0.0.0/0?trust") == 1);
}

TEST_CASE("with SSL every keeper pg_hba line is hostssl", "[hba][ssl]") {
    auto lines = hba_lines({"10.0.0.1"}, "10.0.0.9", "scram-sha-256", true);
    REQUIRE(lines.size() == 3);
    for (const auto& l : lines) CHECK(l.rfind("hostssl ", 0) == 0);
}

TEST_CASE("replication connections carry a passfile and sslmode, never a password", "[conninfo][auth]") {
    KeeperConfig config;
    CHECK(replication_conninfo(config, "10.0.0.1", 5432, "autofailover_node_2") ==
          replication_conninfo("10.0.0.1", 5432, "autofailover_node_2"));
    CHECK(replication_client_env(config).empty());
    config.replication_passfile = "/var/lib/pg/node.keeper/replication.pgpass";
    config.ssl_cert_file = "/var/lib/pg/node.keeper/server.crt";
    config.ssl_key_file = "/var/lib/pg/node.keeper/server.key";
    auto conninfo = replication_conninfo(config, "10.0.0.1", 5432, "autofailover_node_2");
    CHECK(conninfo.find("passfile='/var/lib/pg/node.keeper/replication.pgpass'") != std::string::npos);
    CHECK(conninfo.find("sslmode=require") != std::string::npos);
    CHECK(conninfo.find("password") == std::string::npos);
    auto source = source_conninfo(config, "10.0.0.1", 5432);
    CHECK(source.find("user=autofailover_replicator dbname=postgres") != std::string::npos);
    CHECK(source.find("passfile=") != std::string::npos);
    CHECK(replication_client_env(config) ==
          std::vector<std::string>{"PGPASSFILE=/var/lib/pg/node.keeper/replication.pgpass", "PGSSLMODE=require"});
    auto conf = autofailover_conf_text(config);
    CHECK(conf.find("ssl = on\nssl_cert_file = '/var/lib/pg/node.keeper/server.crt'\n") != std::string::npos);
}

TEST_CASE("pg_rewind's session on the primary runs without JIT", "[conninfo][rewind]") {
    // Its file-list query was JIT-compiled on every rewind (docs/benchmarks.md).
    KeeperConfig config;
    config.pgdata = "/var/lib/pg/node";
    auto rewind = pg_rewind_run(config, "10.0.0.1", 5432, false, [] {}, [] { return false; });
    auto source_arg = std::find(rewind.argv.begin(), rewind.argv.end(), "--source-server");
    REQUIRE(source_arg != rewind.argv.end());
    CHECK(*(source_arg + 1) == source_conninfo(config, "10.0.0.1", 5432) + " options='-c jit=off'");
    CHECK(std::find(rewind.argv.begin(), rewind.argv.end(), "--no-sync") != rewind.argv.end());
}

TEST_CASE("the replication password goes through a 0600 pgpass file, escaped", "[auth]") {
    TempDir dir;
    const std::string given = dir.path + "/password";
    {
        std::ofstream out(given);
        out << "s3:cr\\et\n";
    }
    ::chmod(given.c_str(), 0644);
    CHECK_THROWS_WITH(read_password_file(given), Catch::Contains("chmod 600"));
    ::chmod(given.c_str(), 0600);
    const std::string password = read_password_file(given);
    CHECK(password == "s3:cr\\et");
    CHECK(replication_pgpass_text(password).find("*:*:*:autofailover_replicator:s3\\:cr\\\\et\n") !=
          std::string::npos);
    const std::string pgpass = dir.path + "/replication.pgpass";
    write_replication_pgpass(pgpass, password);
    struct stat st {};
    REQUIRE(::stat(pgpass.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(read_replication_pgpass(pgpass) == password);
    CHECK_THROWS_WITH(read_password_file(dir.path + "/missing"), Catch::Contains("does not exist"));
    std::ofstream(dir.path + "/empty") << "\n";
    ::chmod((dir.path + "/empty").c_str(), 0600);
    CHECK_THROWS_WITH(read_password_file(dir.path + "/empty"), Catch::Contains("is empty"));
}

TEST_CASE("pg_hba block is placed first, replaced in place, and keeps the DBA's lines", "[hba]") {
    std::string original = "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n";
    auto once = with_hba_block(original, {"host replication autofailover_replicator 10.0.0.1/32 trust"});
    CHECK(once.rfind("# BEGIN autofailover", 0) == 0);
    CHECK(once.find("local all all peer") != std::string::npos);
    auto twice = with_hba_block(once, {"host replication autofailover_replicator 10.0.0.2/32 trust"});
    CHECK(twice.find("10.0.0.1") == std::string::npos);
    CHECK(twice.find("10.0.0.2") != std::string::npos);
    CHECK(twice.find("local all all peer") != std::string::npos);
    CHECK(with_hba_block(twice, {"host replication autofailover_replicator 10.0.0.2/32 trust"}) == twice);
}

TEST_CASE("postgresql.auto.conf edits replace, add and remove keys", "[autoconf]") {
    std::string text = "# Do not edit this file manually!\nprimary_conninfo = 'host=old'\nwork_mem = '8MB'\n";
    auto out = with_auto_conf_settings(text, {{"primary_conninfo", std::string("host=new user='x'")},
                                              {"primary_slot_name", std::nullopt},
                                              {"synchronous_standby_names", std::string("")}});
    CHECK(out.find("host=old") == std::string::npos);
    CHECK(out.find("primary_conninfo = 'host=new user=''x'''") != std::string::npos);
    CHECK(out.find("work_mem = '8MB'") != std::string::npos);
    CHECK(out.find("synchronous_standby_names = ''") != std::string::npos);
    auto removed = with_auto_conf_settings(out, {{"primary_conninfo", std::nullopt}});
    CHECK(removed.find("primary_conninfo") == std::string::npos);
}

TEST_CASE("connection strings are redacted before logging", "[conninfo]") {
    CHECK(support::redact_conninfo("postgres://keeper:s3cret@mon:5432/autofailover") ==
          "postgres://keeper:****@mon:5432/autofailover");
    CHECK(support::redact_conninfo("host=a password=s3cret user=b") == "host=a password=**** user=b");
    CHECK(support::redact_conninfo("host=a password='s3 cret' user=b") == "host=a password=**** user=b");
    CHECK(support::redact_conninfo("postgres://m/db?password=s3cret&sslmode=require") ==
          "postgres://m/db?password=****&sslmode=require");
    CHECK(support::redact_conninfo("postgres://keeper@mon/db") == "postgres://keeper@mon/db");
    // libpq's own quoting and escapes: no piece of the password is left behind (aesthetics review, autoctl's
    // former redactor printed `password=*** cret'`).
    CHECK(support::redact_conninfo("password='s3 cret' host=a") == "password=**** host=a");
    CHECK(support::redact_conninfo("host=a password = 'it\\'s x' user=b") == "host=a password = **** user=b");
    CHECK(support::redact_conninfo("host=a password=s3\\ cret user=b") == "host=a password=**** user=b");
    CHECK(support::redact_conninfo("host=a password=a&b user=b") == "host=a password=**** user=b");
    CHECK(support::redact_conninfo("host=a password='unterminated x") == "host=a password=****");
    CHECK(support::redact_conninfo("host=a passfile=/p user=b") == "host=a passfile=/p user=b");
    CHECK(support::redact_conninfo("postgresql://k:p%40ss@h1:1,h2:2/db?password=x&password=y") ==
          "postgresql://k:****@h1:1,h2:2/db?password=****&password=****");
}

TEST_CASE("the bootstrap password is taken out of the monitor URI kept in keeper.json", "[conninfo][auth]") {
    CHECK(support::conninfo_without_password("postgres://autofailover_keeper:s3cret@mon:5432/autofailover?sslmode=require") ==
          "postgres://autofailover_keeper@mon:5432/autofailover?sslmode=require");
    CHECK(support::conninfo_without_password("postgres://k@mon/db?password=s3cret&sslmode=require") ==
          "postgres://k@mon/db?sslmode=require");
    CHECK(support::conninfo_without_password("postgres://k@mon/db?sslmode=require&password=s3cret") ==
          "postgres://k@mon/db?sslmode=require");
    CHECK(support::conninfo_without_password("postgres://k@mon/db?password=s3cret") == "postgres://k@mon/db");
    CHECK(support::conninfo_without_password("host=a password='s3 cret' user=b") == "host=a user=b");
    CHECK(support::conninfo_without_password("postgres://autofailover_keeper@mon/autofailover") ==
          "postgres://autofailover_keeper@mon/autofailover");
}

TEST_CASE("the node's monitor password goes to a 0600 pgpass file for its own role only", "[auth]") {
    TempDir dir;
    const std::string file = dir.path + "/monitor.pgpass";
    write_monitor_pgpass(file, "autofailover_keeper_12", "pass:word\\x");
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    const auto text = support::read_file_if_exists(file).value_or("");
    CHECK_THAT(text, Catch::Contains("*:*:*:autofailover_keeper_12:pass\\:word\\\\x\n"));
}

TEST_CASE("monitor host is taken from URIs and key=value strings", "[conninfo]") {
    CHECK(support::conninfo_host("postgres://autofailover_keeper@127.0.0.1:6000/autofailover") == "127.0.0.1");
    CHECK(support::conninfo_host("postgresql://mon.example:5432/autofailover") == "mon.example");
    CHECK(support::conninfo_host("postgres://u:p@[::1]:5432/x") == "::1");
    CHECK(support::conninfo_host("host=10.1.2.3 port=5 dbname=autofailover") == "10.1.2.3");
    CHECK(support::conninfo_quote("a'b\\c") == "'a\\'b\\\\c'");
}

TEST_CASE("every monitor host of a multi-host URI gets probe access", "[conninfo]") {
    using V = std::vector<std::string>;
    CHECK(support::conninfo_hosts("postgres://k@10.0.0.1:5000,10.0.0.2:5001/autofailover?target_session_attrs=read-write") ==
          V{"10.0.0.1", "10.0.0.2"});
    CHECK(support::conninfo_hosts("postgres://k:p@[::1]:5,mon.example/x") == V{"::1", "mon.example"});
    CHECK(support::conninfo_hosts("postgres://k@m1/autofailover") == V{"m1"});
    CHECK(support::conninfo_hosts("host=a,b port=1,2 dbname=autofailover") == V{"a", "b"});
    CHECK(support::conninfo_hosts("dbname=autofailover").empty());
}

TEST_CASE("default state dir sits next to PGDATA", "[config]") {
    CHECK(support::default_state_dir("/var/lib/pg/node1") == "/var/lib/pg/node1.keeper");
    CHECK(support::default_state_dir("/var/lib/pg/node1/") == "/var/lib/pg/node1.keeper");
}

#include "keeper/pid_file.h"

TEST_CASE("pid file: held while alive, refused to a second holder, removed on exit", "[pidfile]") {
    TempDir dir;
    const std::string path = dir.path + "/keeper.pid";
    CHECK_FALSE(live_pid_in(path));
    {
        PidFile held(path);
        REQUIRE(live_pid_in(path));
        CHECK(*live_pid_in(path) == ::getpid());
        CHECK_THROWS_WITH(PidFile(path), Catch::Contains("another keeper (pid " + std::to_string(::getpid()) + ")"));
        CHECK(*live_pid_in(path) == ::getpid());  // the refused one changed nothing
    }
    CHECK_FALSE(fs::exists(path));
    // A pid file left by a dead keeper does not block the next one.
    support::write_file_atomically(path, "999999999\n");
    CHECK_FALSE(live_pid_in(path));
    PidFile next(path);
    CHECK(*live_pid_in(path) == ::getpid());
}

TEST_CASE("pid file: the lock decides, not a live pid left in the file", "[pidfile]") {
    TempDir dir;
    const std::string path = dir.path + "/keeper.pid";
    // An unlocked file naming a live process (a pid reused after the keeper died): nobody runs.
    support::write_file_atomically(path, std::to_string(::getppid()) + "\n");
    CHECK_FALSE(live_pid_in(path));
    PidFile taken(path);
    CHECK(*live_pid_in(path) == ::getpid());
}

TEST_CASE("pid file: a keeper in another process holds it until it dies", "[pidfile]") {
    TempDir dir;
    const std::string path = dir.path + "/keeper.pid";
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(ready[0]);
        try {
            PidFile held(path);
            (void)!::write(ready[1], "x", 1);
            ::pause();  // until killed: a keeper that dies without cleaning up
        } catch (...) {
        }
        ::_exit(1);
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    CHECK(live_pid_in(path) == std::optional<long>(child));
    CHECK_THROWS_WITH(PidFile(path), Catch::Contains("another keeper (pid " + std::to_string(child) + ")"));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    // SIGKILL: the file stays, with the dead keeper's pid, but its lock died with it.
    CHECK(fs::exists(path));
    CHECK_FALSE(live_pid_in(path));
    PidFile next(path);
    CHECK(*live_pid_in(path) == ::getpid());
}

TEST_CASE("atomic writes use a temp file of their own, private until renamed", "[atomic]") {
    TempDir dir;
    const std::string path = dir.path + "/state.json";
    support::write_file_atomically(path + ".tmp", "someone else's temp file");
    support::write_file_atomically(path, "new", 0640);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
    CHECK(*support::read_file_if_exists(path + ".tmp") == "someone else's temp file");
    int files = 0;
    for (const auto& entry : fs::directory_iterator(dir.path)) {
        (void)entry;
        ++files;
    }
    CHECK(files == 2);
}

TEST_CASE("keeper.json refuses a password method without a replication passfile", "[config][auth]") {
    const std::string base = R"({"monitor_uri":"postgres://m/autofailover","pgdata":"/d","hostname":"h",)";
    CHECK_THROWS_WITH(config_from_json(base + R"("auth_method":"scram-sha-256"})"),
                      Catch::Contains("replication_passfile"));
    auto c = config_from_json(base + R"("auth_method":"scram-sha-256","replication_passfile":"/k/replication.pgpass",
                                        "ssl_cert_file":"/k/server.crt","ssl_key_file":"/k/server.key"})");
    CHECK(ssl_enabled(c));
    CHECK(c.replication_passfile == "/k/replication.pgpass");
}

namespace {
KeeperConfig client_config(std::vector<std::string> networks, bool ssl = true, std::string auth = "scram-sha-256") {
    KeeperConfig c;
    c.allow_clients = std::move(networks);
    c.auth_method = std::move(auth);
    if (ssl) {
        c.ssl_cert_file = "/x/server.crt";
        c.ssl_key_file = "/x/server.key";
    }
    return c;
}
}  // namespace

TEST_CASE("client lines: hostssl with the node's method, keeper roles rejected first", "[hba][clients]") {
    CHECK(client_hba_lines(client_config({})).empty());
    auto lines = client_hba_lines(client_config({"10.77.0.0/24", "10.9.9.9", "10.77.0.0/24"}));
    CHECK(lines == std::vector<std::string>{
                       "host all autofailover_replicator,autofailover_monitor 10.77.0.0/24 reject",
                       "host all autofailover_replicator,autofailover_monitor 10.9.9.9/32 reject",
                       "hostssl all all 10.77.0.0/24 scram-sha-256",
                       "hostssl all all 10.9.9.9/32 scram-sha-256",
                   });
    auto plain = client_config({"fd00::/8"}, false, "trust");
    plain.client_database = "shop";
    plain.client_role = "+shop_apps";
    CHECK(client_hba_lines(plain).back() == "host shop +shop_apps fd00::/8 trust");
    // The last fence: a hand-edited value that escaped the load checks never becomes a line.
    auto hostile = client_config({"all", "10.0.0.0/8\nhost all all 0.0.0.0/0 trust"});
    for (const auto& line : client_hba_lines(hostile)) CHECK(line.rfind("# refused", 0) == 0);
    auto bad_role = client_config({"10.0.0.0/8"});
    bad_role.client_role = "all\nhost all all 0.0.0.0/0 trust";
    CHECK(client_hba_lines(bad_role) == std::vector<std::string>{"# refused client_database or client_role: no application line"});
}

TEST_CASE("the same options give the same client lines on every node", "[hba][clients]") {
    auto a = client_config({"10.77.0.0/24"});
    a.hostname = "10.0.0.1";
    auto b = client_config({"10.77.0.0/24"});
    b.hostname = "10.0.0.2";
    CHECK(client_hba_lines(a) == client_hba_lines(b));
}

TEST_CASE("the DBA's part of pg_hba.conf is everything outside the keeper's block", "[hba][clients]") {
    const std::string dba = "local all all peer\nhostssl shop app 10.5.0.0/16 scram-sha-256\n# my note\n";
    const auto with_block = with_hba_block(dba, {"hostssl replication autofailover_replicator 10.0.0.1/32 scram-sha-256"});
    CHECK(hba_local_part(with_block) == dba);
    CHECK(hba_local_part(dba) == dba);
    // What pg_rewind leaves: the primary's file (its block and its DBA lines); the node's own come back.
    const std::string primary_file =
        with_hba_block("local all all peer\nhost all primary_only 10.6.0.0/16 reject\n", {"hostssl x y 10.0.0.2/32 z"});
    const auto restored = with_hba_local_part(primary_file, dba);
    CHECK(restored.rfind("# BEGIN autofailover", 0) == 0);
    CHECK(restored.find("hostssl x y 10.0.0.2/32 z") != std::string::npos);
    CHECK(restored.find("primary_only") == std::string::npos);
    CHECK(hba_local_part(restored) == dba);
    // No block in the new file (--skip-pg-hba): the node's whole file comes back.
    CHECK(with_hba_local_part("host all primary_only 1.2.3.4/32 trust\n", dba) == dba);
    // A cut block (no END) is dropped rather than kept open.
    CHECK(with_hba_local_part("# BEGIN autofailover: managed by the keeper, do not edit inside this block\nhost x\n", dba) ==
          dba);
}

TEST_CASE("save and restore keep the node's own lines across a copied pg_hba.conf", "[hba][clients]") {
    TempDir dir;
    const std::string pgdata = dir.path + "/node";
    fs::create_directories(pgdata);
    const std::string hba = pgdata + "/pg_hba.conf";
    const std::string own = "local all all peer\nhostssl all dba_n1 10.9.0.1/32 scram-sha-256\n";
    support::write_file_atomically(hba, with_hba_block(own, {"hostssl replication autofailover_replicator 10.0.0.1/32 scram-sha-256"}));
    CHECK_FALSE(restore_local_hba(pgdata));  // nothing saved: nothing to do
    save_local_hba(pgdata);
    REQUIRE(fs::exists(saved_hba_path(pgdata)));
    struct stat st {};
    REQUIRE(::stat(saved_hba_path(pgdata).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    // pg_rewind copies the primary's file...
    support::write_file_atomically(hba, with_hba_block("local all all peer\nhostssl all dba_n2 10.9.0.2/32 scram-sha-256\n",
                                              {"hostssl replication autofailover_replicator 10.0.0.2/32 scram-sha-256"}));
    // ...a second save (the base backup after a failed rewind) keeps the first one.
    save_local_hba(pgdata);
    CHECK(restore_local_hba(pgdata));
    CHECK_FALSE(fs::exists(saved_hba_path(pgdata)));
    const auto text = *support::read_file_if_exists(hba);
    CHECK(text.find("dba_n1") != std::string::npos);
    CHECK(text.find("dba_n2") == std::string::npos);
    CHECK(hba_local_part(text) == own);
    // A data directory that is not there yet (pgdata being swapped): the saved part waits.
    const std::string missing = dir.path + "/other";
    support::write_file_atomically(saved_hba_path(missing), own);
    CHECK_FALSE(restore_local_hba(missing));
    CHECK(fs::exists(saved_hba_path(missing)));
}

// autoctl set formation allow-clients (docs/clients.md): the monitor's list, merged with keeper.json's.
TEST_CASE("formation client networks are merged after the node's own, each value checked again", "[hba][clients]") {
    FormationClients wide;
    wide.version = 3;
    wide.networks = {"10.77.0.0/24", "10.8.0.0/16", "10.8.0.0/16"};
    wide.client_role = "app";
    // Node list only, formation list only, both.
    CHECK(client_hba_lines(client_config({}), FormationClients{}).empty());
    CHECK(client_hba_lines(client_config({}), wide) ==
          std::vector<std::string>{"host all autofailover_replicator,autofailover_monitor 10.77.0.0/24 reject",
                                   "host all autofailover_replicator,autofailover_monitor 10.8.0.0/16 reject",
                                   "hostssl all app 10.77.0.0/24 scram-sha-256",
                                   "hostssl all app 10.8.0.0/16 scram-sha-256"});
    auto node = client_config({"10.77.0.0/24", "10.9.9.9"});
    CHECK(client_hba_lines(node, wide) ==
          std::vector<std::string>{"host all autofailover_replicator,autofailover_monitor 10.77.0.0/24 reject",
                                   "host all autofailover_replicator,autofailover_monitor 10.9.9.9/32 reject",
                                   "host all autofailover_replicator,autofailover_monitor 10.8.0.0/16 reject",
                                   "hostssl all all 10.77.0.0/24 scram-sha-256",
                                   "hostssl all all 10.9.9.9/32 scram-sha-256",
                                   "hostssl all app 10.77.0.0/24 scram-sha-256",
                                   "hostssl all app 10.8.0.0/16 scram-sha-256"});
    // An identical line is written once.
    FormationClients same;
    same.networks = {"10.9.9.9/32"};
    CHECK(client_hba_lines(node, same) == client_hba_lines(node));
    // Without the formation's list the node's own lines are unchanged (the one-argument form).
    CHECK(client_hba_lines(node, FormationClients{}) == client_hba_lines(node));
}

TEST_CASE("refused formation values from the monitor never become pg_hba.conf lines", "[hba][clients]") {
    auto node = client_config({"10.9.0.0/16"});
    FormationClients hostile;
    hostile.networks = {"all", "samenet", "10.1.2.3/8", "db.example.com", "10.0.0.0/8\nhost all all 0.0.0.0/0 trust",
                        "10.0.0.0/8 trust"};
    const auto lines = client_hba_lines(node, hostile);
    for (const auto& line : lines) {
        CHECK(line.find('\n') == std::string::npos);
        if (line.rfind("# refused formation client network", 0) == 0) continue;
        CHECK(line.find("10.9.0.0/16") != std::string::npos);  // the node's own still works
    }
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("# refused", 0) == 0; }) == 6);
    FormationClients bad_names;
    bad_names.networks = {"10.8.0.0/16"};
    for (const char* role : {"autofailover_replicator", "all\nhost all all 0.0.0.0/0 trust", "a b", "@file"}) {
        bad_names.client_role = role;
        CHECK(client_hba_lines(node, bad_names) ==
              std::vector<std::string>{"# refused formation client_database or client_role: no application line",
                                       "host all autofailover_replicator,autofailover_monitor 10.9.0.0/16 reject",
                                       "hostssl all all 10.9.0.0/16 scram-sha-256"});
    }
    bad_names.client_role = "all";
    bad_names.client_database = "replication";
    CHECK(client_hba_lines(node, bad_names).front().rfind("# refused formation client_database", 0) == 0);
}
