// The rejoin path: what says a rewound standby cannot follow its primary, what
// proves it streams, and what the keeper remembers and configures for it.
#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"
#include "keeper/postgres_files.h"
#include "keeper/rejoin.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace autofailover;
using namespace autofailover::keeper;
using std::chrono::milliseconds;

namespace {

const char* kRemovedLine =
    "2026-11-23 08:52:11.120 UTC [4242] FATAL:  could not receive data from WAL stream: ERROR:  requested WAL "
    "segment 000000010000000000000003 has already been removed\n";

struct TempLog {
    std::filesystem::path path;
    TempLog() {
        char name[] = "/tmp/keeper-rejoin-test-XXXXXX";
        int fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = name;
    }
    ~TempLog() { std::filesystem::remove(path); }
    void append(const std::string& text) {
        std::ofstream out(path, std::ios::app | std::ios::binary);
        out << text;
    }
};

}  // namespace

TEST_CASE("a primary that removed the needed WAL segment makes a rewound standby unfollowable", "[rejoin]") {
    auto reason = unfollowable_reason(kRemovedLine);
    REQUIRE(reason);
    CHECK(reason->find("000000010000000000000003") != std::string::npos);
}

TEST_CASE("diverged timeline histories make a rewound standby unfollowable", "[rejoin]") {
    CHECK(unfollowable_reason("FATAL:  could not receive data from WAL stream: ERROR:  requested starting point "
                              "0/5000000 on timeline 1 is not in this server's history"));
    CHECK(unfollowable_reason("FATAL:  new timeline 3 forked off current database system timeline 2 before "
                              "current recovery point 0/6000148"));
    CHECK(unfollowable_reason("FATAL:  database system identifier differs between the primary and standby"));
}

TEST_CASE("an unreachable primary is no reason to re-copy", "[rejoin]") {
    CHECK_FALSE(unfollowable_reason(
        "FATAL:  could not connect to the primary server: connection to server at \"127.0.0.1\", port 7102 failed: "
        "Connection refused\n"));
    CHECK_FALSE(unfollowable_reason("LOG:  waiting for WAL to become available at 0/3000018\n"));
    CHECK_FALSE(unfollowable_reason("LOG:  started streaming WAL from primary at 0/3000000 on timeline 2\n"));
}

TEST_CASE("a walreceiver proves streaming only with WAL past its start or nothing left to fetch", "[rejoin]") {
    CHECK_FALSE(streams_from_primary(std::nullopt, Lsn{0x3000000}));
    CHECK_FALSE(streams_from_primary(WalReceiverView{"starting", Lsn{0x3000000}, Lsn{0x3000000}}, Lsn{0x5000000}));
    // Connected, but the walsender has sent nothing yet (it fails on a removed segment).
    CHECK_FALSE(streams_from_primary(WalReceiverView{"streaming", Lsn{0x3000000}, Lsn{0x3000000}}, Lsn{0x5000000}));
    CHECK_FALSE(streams_from_primary(WalReceiverView{"streaming", Lsn{0x3000000}, Lsn{0x3000000}}, std::nullopt));
    CHECK(streams_from_primary(WalReceiverView{"streaming", Lsn{0x3000000}, Lsn{0x3001000}}, std::nullopt));
    // An idle primary: nothing newer than what the standby holds.
    CHECK(streams_from_primary(WalReceiverView{"streaming", Lsn{0x3000000}, Lsn{0x3000000}}, Lsn{0x3000000}));
}

TEST_CASE("the server log watch reads only lines written after its start", "[rejoin]") {
    TempLog log;
    log.append(kRemovedLine);  // from an earlier start: not ours
    ServerLogWatch watch(log.path.string(), ServerLogWatch::end_of(log.path.string()));
    CHECK_FALSE(watch.unfollowable_reason());
    log.append("LOG:  entering standby mode\n");
    CHECK_FALSE(watch.unfollowable_reason());
    // A line still being written is read once complete.
    std::string line = kRemovedLine;
    log.append(line.substr(0, 60));
    CHECK_FALSE(watch.unfollowable_reason());
    log.append(line.substr(60));
    CHECK(watch.unfollowable_reason());
}

TEST_CASE("the server log watch copes with a missing or truncated log", "[rejoin]") {
    CHECK(ServerLogWatch::end_of("/nonexistent/keeper-rejoin.log") == 0);
    ServerLogWatch absent("/nonexistent/keeper-rejoin.log", 0);
    CHECK_FALSE(absent.unfollowable_reason());
    TempLog log;
    log.append(std::string(500, 'x') + "\n");
    ServerLogWatch watch(log.path.string(), ServerLogWatch::end_of(log.path.string()));
    std::filesystem::resize_file(log.path, 0);
    log.append(kRemovedLine);
    CHECK(watch.unfollowable_reason());
}

TEST_CASE("state.json remembers that a rewound directory needs a base backup", "[rejoin][state]") {
    KeeperState s;
    s.node_id = 3;
    s.rejoin_needs_base_backup = true;
    CHECK(state_from_json(state_to_json(s)).rejoin_needs_base_backup);
    // Files written before the key existed.
    CHECK_FALSE(state_from_json(R"({"node_id":3,"current_state":"secondary"})").rejoin_needs_base_backup);
}

TEST_CASE("keeper.json: wal_keep_size and rejoin_stream_timeout", "[rejoin][config]") {
    const std::string base =
        R"({"monitor_uri":"postgres://m/autofailover","pgdata":"/d","hostname":"h","auth_method":"trust")";
    auto defaults = config_from_json(base + "}");
    CHECK(defaults.wal_keep_size == "512MB");
    CHECK(defaults.timeouts.rejoin_stream_timeout == milliseconds(30000));
    auto set = config_from_json(base + R"(,"wal_keep_size":"0","timeouts":{"rejoin_stream_timeout_ms":5000}})");
    CHECK(set.wal_keep_size == "0");
    CHECK(set.timeouts.rejoin_stream_timeout == milliseconds(5000));
    CHECK(config_from_json(config_to_json(set)).wal_keep_size == "0");
    CHECK_THROWS_WITH(config_from_json(base + R"(,"wal_keep_size":"lots"})"), Catch::Contains("wal_keep_size"));
    CHECK_THROWS_WITH(config_from_json(base + R"(,"wal_keep_size":"1GB'; x"})"), Catch::Contains("wal_keep_size"));
    CHECK(autofailover_conf_text(set).find("wal_keep_size = '0'\n") != std::string::npos);
    CHECK(autofailover_conf_text(defaults).find("wal_keep_size = '512MB'\n") != std::string::npos);
}

TEST_CASE("keeper.json: max_slot_wal_keep_size caps what a slot holds", "[rejoin][config]") {
    const std::string base =
        R"({"monitor_uri":"postgres://m/autofailover","pgdata":"/d","hostname":"h","auth_method":"trust")";
    auto defaults = config_from_json(base + "}");
    CHECK(defaults.max_slot_wal_keep_size == "10GB");
    CHECK(autofailover_conf_text(defaults).find("max_slot_wal_keep_size = '10GB'\n") != std::string::npos);
    auto unlimited = config_from_json(base + R"(,"max_slot_wal_keep_size":"-1"})");
    CHECK(config_from_json(config_to_json(unlimited)).max_slot_wal_keep_size == "-1");
    CHECK(autofailover_conf_text(unlimited).find("max_slot_wal_keep_size = '-1'\n") != std::string::npos);
    CHECK(config_from_json(base + R"(,"max_slot_wal_keep_size":"32MB"})").max_slot_wal_keep_size == "32MB");
    CHECK_THROWS_WITH(config_from_json(base + R"(,"max_slot_wal_keep_size":"-2"})"),
                      Catch::Contains("max_slot_wal_keep_size"));
    CHECK_THROWS_WITH(config_from_json(base + R"(,"max_slot_wal_keep_size":"1GB'\nx = 1"})"),
                      Catch::Contains("max_slot_wal_keep_size"));
}
