// support/: where the PostgreSQL programs and a data directory's neighbours are, and the
// one error type with its exit code, as keeper and autoctl both use them.
#include "autoctl/exit_codes.h"
#include "keeper/keeper.h"
#include "support/error.h"
#include "support/postgres_paths.h"

#include <catch2/catch.hpp>

namespace support = autofailover::support;
using autofailover::keeper::KeeperError;

TEST_CASE("postgres paths: programs, server log, state directory", "[support]") {
    CHECK(support::pg_program("/usr/lib/postgresql/15/bin", "pg_ctl") == "/usr/lib/postgresql/15/bin/pg_ctl");
    CHECK(support::pg_program("/opt/pg/bin/", "initdb") == "/opt/pg/bin/initdb");
    CHECK(support::pg_program("", "pg_ctl") == "pg_ctl");  // looked up in PATH
    CHECK(support::server_log_path("/var/lib/pg/node1") == "/var/lib/pg/node1.postgres.log");
    CHECK(support::server_log_path("/var/lib/pg/node1//") == "/var/lib/pg/node1.postgres.log");
    CHECK(support::default_state_dir("/var/lib/pg/node1/") == "/var/lib/pg/node1.keeper");
    CHECK(support::default_state_dir("/") == "/.keeper");
    CHECK_FALSE(support::default_pg_bindir().empty());
}

TEST_CASE("one error type carries the exit code for keeper and autoctl", "[support]") {
    const KeeperError bad(KeeperError::Kind::BadArguments, "b");
    const KeeperError monitor(KeeperError::Kind::MonitorError, "m");
    const KeeperError local(KeeperError::Kind::LocalPostgres, "l");
    CHECK(bad.exit_code() == 1);
    CHECK(monitor.exit_code() == 2);
    CHECK(local.exit_code() == 4);
    // autoctl's main() catches CliError: a KeeperError reaches it with its own code.
    try {
        throw KeeperError(KeeperError::Kind::MonitorError, "monitor refused");
    } catch (const autoctl::CliError& e) {
        CHECK(e.code() == autoctl::ExitCode::MonitorError);
        CHECK(std::string(e.what()) == "monitor refused");
    }
    CHECK(support::Error(support::ExitCode::Timeout, "t").exit_code() == 3);
}
