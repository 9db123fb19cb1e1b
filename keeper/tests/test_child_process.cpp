// The child-process runner the keeper uses for initdb, pg_ctl, pg_basebackup, pg_rewind.
#include "keeper/child_process.h"

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace autofailover::keeper;
using std::chrono::milliseconds;

TEST_CASE("child exit code and output are captured", "[child]") {
    auto ok = run_child({"/bin/sh", "-c", "echo out; echo err >&2; exit 0"});
    CHECK(ok.ok());
    CHECK(ok.output.find("out") != std::string::npos);
    CHECK(ok.output.find("err") != std::string::npos);
    auto bad = run_child({"/bin/sh", "-c", "exit 3"});
    CHECK(bad.exit_code == 3);
    CHECK_FALSE(bad.ok());
    auto missing = run_child({"/nonexistent/tool"});
    CHECK(missing.exit_code == 127);
}

TEST_CASE("a long child is killed at its timeout and ticks keep coming meanwhile", "[child]") {
    int ticks = 0;
    ChildOptions options;
    options.timeout = milliseconds(1200);
    options.tick = [&] { ++ticks; };
    options.tick_every = milliseconds(200);
    auto r = run_child({"/bin/sleep", "30"}, options);
    CHECK(r.timed_out);
    CHECK_FALSE(r.ok());
    CHECK(ticks >= 3);
}

TEST_CASE("a child is cancelled when the keeper stops", "[child]") {
    int polls = 0;
    ChildOptions options;
    options.cancel = [&] { return ++polls > 3; };
    auto r = run_child({"/bin/sleep", "30"}, options);
    CHECK(r.cancelled);
    CHECK_FALSE(r.timed_out);
    CHECK_FALSE(r.ok());
}

TEST_CASE("extra environment reaches the child", "[child]") {
    ChildOptions options;
    options.extra_env = {"KEEPER_TEST_VALUE=hello"};
    auto r = run_child({"/bin/sh", "-c", "echo $KEEPER_TEST_VALUE"}, options);
    CHECK(tail_of(r.output) == "hello");
}

TEST_CASE("extra environment wins over the inherited variable of the same name", "[child]") {
    // An operator's PGPASSFILE must not hide the replication pgpass the keeper passes.
    ::setenv("KEEPER_TEST_PASSFILE", "/inherited", 1);
    ChildOptions options;
    options.extra_env = {"KEEPER_TEST_PASSFILE=/keeper/replication.pgpass"};
    // env(1) prints the environment exactly as exec'd (a shell would rebuild it).
    auto r = run_child({"/usr/bin/env"}, options);
    ::unsetenv("KEEPER_TEST_PASSFILE");
    CHECK(r.output.find("KEEPER_TEST_PASSFILE=/keeper/replication.pgpass\n") != std::string::npos);
    CHECK(r.output.find("KEEPER_TEST_PASSFILE=/inherited") == std::string::npos);
}
