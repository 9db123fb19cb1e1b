// pgBackRest integration: keeper.json "backup" checks, the archive/restore commands the
// keeper writes (quoted for /bin/sh and Postgres' % escapes), and pgbackrest info parsing.
#include "keeper/backup.h"
#include "keeper/keeper_config.h"
#include "keeper/postgres_files.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace autofailover::keeper;

namespace {

KeeperConfig node_with_backup() {
    KeeperConfig c;
    c.monitor_uri = "postgres://autofailover_keeper@127.0.0.1:6000/autofailover";
    c.hostname = "127.0.0.1";
    c.port = 6951;
    c.pgdata = "/tmp/f/node1";
    c.auth_method = "trust";
    c.backup.tool = "pgbackrest";
    c.backup.stanza = "main-1";
    c.backup.config = "/tmp/f/pgbackrest.conf";
    return c;
}

// keeper.json text with the "backup" object replaced by `backup_json`.
std::string with_backup(const std::string& backup_json) {
    auto text = config_to_json(node_with_backup());
    const auto at = text.find("\"backup\"");
    REQUIRE(at != std::string::npos);
    const auto end = text.find('}', at);
    return text.substr(0, at) + "\"backup\": " + backup_json + text.substr(end + 1);
}

}  // namespace

TEST_CASE("backup settings survive a round trip and are absent when off", "[backup]") {
    KeeperConfig back = config_from_json(config_to_json(node_with_backup()));
    CHECK(back.backup.enabled());
    CHECK(back.backup.stanza == "main-1");
    CHECK(back.backup.config == "/tmp/f/pgbackrest.conf");
    KeeperConfig off = node_with_backup();
    off.backup = {};
    CHECK(config_to_json(off).find("\"backup\"") == std::string::npos);
    CHECK_FALSE(config_from_json(config_to_json(off)).backup.enabled());
}

TEST_CASE("backup values that would reach a shell or a command line are refused", "[backup]") {
    CHECK_THROWS_WITH(config_from_json(with_backup(R"j({"tool":"pgbackrest","stanza":"a;rm -rf /","config":"/tmp/c"})j")),
                      Catch::Contains("backup.stanza"));
    CHECK_THROWS_WITH(config_from_json(with_backup(R"j({"tool":"pgbackrest","stanza":"s","config":"/tmp/c'x"})j")),
                      Catch::Contains("backup.config"));
    CHECK_THROWS_WITH(config_from_json(with_backup(R"j({"tool":"pgbackrest","stanza":"s","config":"relative.conf"})j")),
                      Catch::Contains("backup.config"));
    CHECK_THROWS_WITH(config_from_json(with_backup(R"j({"tool":"pgbackrest","stanza":"s","config":"/tmp/$(id)"})j")),
                      Catch::Contains("backup.config"));
    CHECK_THROWS_WITH(config_from_json(with_backup(R"j({"tool":"wal-g","stanza":"s","config":"/tmp/c"})j")),
                      Catch::Contains("backup.tool"));
    CHECK_THROWS_WITH(config_from_json(with_backup(R"j({"tool":"pgbackrest","stanza":"","config":"/tmp/c"})j")),
                      Catch::Contains("backup.stanza"));
    CHECK(backup_setting_problem("stanza", "--stanza=x").has_value());
    CHECK_FALSE(backup_setting_problem("config", "/etc/pgbackrest/pgbackrest.conf").has_value());
}

TEST_CASE("archive and restore commands quote every word for /bin/sh and Postgres", "[backup]") {
    KeeperConfig c = node_with_backup();
    CHECK(archive_command(c) ==
          "'/usr/bin/pgbackrest' '--config=/tmp/f/pgbackrest.conf' '--stanza=main-1' '--pg1-path=/tmp/f/node1' "
          "archive-push \"%p\"");
    CHECK(restore_command(c) ==
          "'/usr/bin/pgbackrest' '--config=/tmp/f/pgbackrest.conf' '--stanza=main-1' '--pg1-path=/tmp/f/node1' "
          "archive-get %f \"%p\"");
    // A data directory may hold a quote or a percent sign: neither escapes its word.
    c.pgdata = "/tmp/it's 100%";
    CHECK(shell_word_for_archive_command(c.pgdata) == "'/tmp/it'\\''s 100%%'");
    const std::string conf = autofailover_conf_text(c);
    CHECK(conf.find("archive_mode = on\n") != std::string::npos);
    // In postgresql.conf syntax the whole command is one quoted value, its own quotes doubled.
    CHECK(conf.find("archive_command = ''/usr/bin/pgbackrest''") == std::string::npos);
    CHECK(conf.find("archive_command = '''/usr/bin/pgbackrest'' ") != std::string::npos);
    c.backup = {};
    CHECK(autofailover_conf_text(c).find("archive_") == std::string::npos);
}

TEST_CASE("pgbackrest info JSON: the newest valid backup of the primary's system", "[backup]") {
    const std::string json = R"([{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000020000000000000009","min":"000000010000000000000001"}],
      "backup":[
        {"archive":{"start":"000000010000000000000003","stop":"000000010000000000000004"},"database":{"id":1,"repo-key":1},"error":false,
         "info":{"delta":23213868,"repository":{"delta":3062612,"size":3062612},"size":23213868},"label":"20261128-170441F",
         "lsn":{"start":"0/3000028","stop":"0/4000088"},"timestamp":{"start":1795885481,"stop":1795885488},"type":"full"},
        {"archive":{"start":"000000010000000000000006","stop":"000000010000000000000006"},"database":{"id":1,"repo-key":1},"error":true,
         "info":{"size":1},"label":"20261128-170441F_20261128-171000I","timestamp":{"start":1795885800,"stop":1795885801},"type":"incr"}],
      "db":[{"id":1,"repo-key":1,"system-id":7713269345127759392,"version":"15"}],
      "name":"s1","status":{"code":0,"message":"ok"}}])";
    const BackupInfo info = parse_backup_info(json, "s1");
    CHECK(info.status_code == 0);
    REQUIRE(info.backups.size() == 2);
    CHECK(info.backups[0].size == 23213868);
    CHECK(info.backups[0].repo_size == 3062612);
    CHECK(info.backups[0].stop_epoch - info.backups[0].start_epoch == 7);
    CHECK(info.archives.at(0).max == "000000020000000000000009");
    auto latest = latest_backup_of(info, "7713269345127759392");
    REQUIRE(latest);
    CHECK(latest->label == "20261128-170441F");  // the newer one failed
    CHECK_FALSE(latest_backup_of(info, "1234"));  // another cluster's stanza: never restored
    CHECK_THROWS_WITH(parse_backup_info(json, "other"), Catch::Contains("no stanza other"));
    const BackupInfo empty = parse_backup_info(
        R"([{"backup":[],"db":[],"name":"s1","status":{"code":2,"message":"no valid backups"}}])", "s1");
    CHECK(empty.status_code == 2);
    CHECK_FALSE(latest_backup_of(empty, "7713269345127759392"));
}

TEST_CASE("pgBackRest command lines name the node by options, never through a shell", "[backup]") {
    KeeperConfig c = node_with_backup();
    c.socket_dir = "/tmp/sock";
    auto argv = pgbackrest_argv(c.backup, "backup", pgbackrest_node_options(c, 2));
    REQUIRE(argv.size() == 7);
    CHECK(argv[0] == "/usr/bin/pgbackrest");
    CHECK(argv[1] == "--config=/tmp/f/pgbackrest.conf");
    CHECK(argv[2] == "--stanza=main-1");
    CHECK(argv[3] == "--pg2-path=/tmp/f/node1");
    CHECK(argv[4] == "--pg2-port=6951");
    CHECK(argv[5] == "--pg2-socket-path=/tmp/sock");
    CHECK(argv[6] == "backup");
}

TEST_CASE("before a promotion every received segment is queued for the archiver again", "[backup]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("af_requeue_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "pg_wal" / "archive_status");
    auto touch = [&](const std::string& name) { std::ofstream(dir / "pg_wal" / "archive_status" / name) << ""; };
    touch("000000010000000000000003.done");
    touch("000000010000000000000004.done");
    touch("000000010000000000000005.ready");      // not archived yet: stays as it is
    touch("00000002.history.done");               // history files are archived at promotion anyway
    touch("000000010000000000000002.00000028.backup.done");
    CHECK(requeue_received_segments(dir.string()) == 2);
    CHECK(fs::exists(dir / "pg_wal" / "archive_status" / "000000010000000000000003.ready"));
    CHECK(fs::exists(dir / "pg_wal" / "archive_status" / "000000010000000000000004.ready"));
    CHECK_FALSE(fs::exists(dir / "pg_wal" / "archive_status" / "000000010000000000000004.done"));
    CHECK(fs::exists(dir / "pg_wal" / "archive_status" / "00000002.history.done"));
    CHECK(requeue_received_segments((dir / "missing").string()) == 0);
    fs::remove_all(dir);
}

TEST_CASE("a segment the walreceiver left unclosed at a boundary is queued before a promotion", "[backup]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("af_unclosed_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "pg_wal" / "archive_status");
    const std::uint64_t seg = 16 * 1024 * 1024;
    auto touch = [&](const fs::path& p) { std::ofstream(p) << ""; };
    touch(dir / "pg_wal" / "000000010000000000000008");
    touch(dir / "pg_wal" / "000000010000000000000009");   // complete, no status file: the gap of row B2
    touch(dir / "pg_wal" / "00000001000000000000000A");   // a recycled file with a future name
    touch(dir / "pg_wal" / "archive_status" / "000000010000000000000008.done");
    const fs::path ready = dir / "pg_wal" / "archive_status" / "000000010000000000000009.ready";
    // not at a boundary: the last segment is partial, Postgres archives it itself (as .partial)
    CHECK_FALSE(queue_unclosed_segment(dir.string(), 0xA000000 + 0x28, seg));
    CHECK_FALSE(fs::exists(ready));
    // at the boundary 0/A000000: segment 9 is complete and unmarked
    CHECK(queue_unclosed_segment(dir.string(), 0xA000000, seg));
    CHECK(fs::exists(ready));
    CHECK_FALSE(fs::exists(dir / "pg_wal" / "archive_status" / "00000001000000000000000A.ready"));
    // marked already: nothing more
    CHECK_FALSE(queue_unclosed_segment(dir.string(), 0xA000000, seg));
    // of two timelines holding the segment, the newest; a segment that is not there: nothing
    touch(dir / "pg_wal" / "000000020000000000000008");
    fs::remove(dir / "pg_wal" / "archive_status" / "000000010000000000000008.done");
    CHECK(queue_unclosed_segment(dir.string(), 0x9000000, seg));
    CHECK(fs::exists(dir / "pg_wal" / "archive_status" / "000000020000000000000008.ready"));
    CHECK_FALSE(fs::exists(dir / "pg_wal" / "archive_status" / "000000010000000000000008.ready"));
    CHECK_FALSE(queue_unclosed_segment(dir.string(), 0x20000000, seg));
    CHECK_FALSE(queue_unclosed_segment(dir.string(), 0, seg));
    // the segment numbering past the first 4 GB (xlogid 1): segment 0x100 is 000000010000000100000000
    touch(dir / "pg_wal" / "000000010000000100000000");
    CHECK(queue_unclosed_segment(dir.string(), 0x101000000ULL, seg));
    CHECK(fs::exists(dir / "pg_wal" / "archive_status" / "000000010000000100000000.ready"));
    fs::remove_all(dir);
}
