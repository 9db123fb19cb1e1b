// support/child_process.h, the one child-process runner of keeper and autoctl (initdb, pg_ctl, pg_rewind...).
#include "support/child_process.h"

#include "autoctl/exit_codes.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

namespace support = autofailover::support;
using std::chrono::milliseconds;

TEST_CASE("child exit code and output are captured", "[child]") {
    auto ok = support::run_child({"/bin/sh", "-c", "echo out; echo err >&2; exit 0"});
    CHECK(ok.ok());
    CHECK(ok.output.find("out") != std::string::npos);
    CHECK(ok.output.find("err") != std::string::npos);
    auto bad = support::run_child({"/bin/sh", "-c", "exit 3"});
    CHECK(bad.exit_code == 3);
    CHECK_FALSE(bad.ok());
    auto missing = support::run_child({"/nonexistent/tool"});
    CHECK(missing.exit_code == 127);
}

TEST_CASE("a long child is killed at its timeout and ticks keep coming meanwhile", "[child]") {
    int ticks = 0;
    support::ChildOptions options;
    options.timeout = milliseconds(1200);
    options.tick = [&] { ++ticks; };
    options.tick_every = milliseconds(200);
    auto r = support::run_child({"/bin/sleep", "30"}, options);
    CHECK(r.timed_out);
    CHECK_FALSE(r.ok());
    CHECK(ticks >= 3);
}

TEST_CASE("a child is cancelled when the keeper stops", "[child]") {
    int polls = 0;
    support::ChildOptions options;
    options.cancel = [&] { return ++polls > 3; };
    auto r = support::run_child({"/bin/sleep", "30"}, options);
    CHECK(r.cancelled);
    CHECK_FALSE(r.timed_out);
    CHECK_FALSE(r.ok());
}

TEST_CASE("extra environment reaches the child", "[child]") {
    support::ChildOptions options;
    options.extra_env = {"KEEPER_TEST_VALUE=hello"};
    auto r = support::run_child({"/bin/sh", "-c", "echo $KEEPER_TEST_VALUE"}, options);
    CHECK(support::tail_of(r.output) == "hello");
}

TEST_CASE("extra environment wins over the inherited variable of the same name", "[child]") {
    // An operator's PGPASSFILE must not hide the replication pgpass the keeper passes.
    ::setenv("KEEPER_TEST_PASSFILE", "/inherited", 1);
    support::ChildOptions options;
    options.extra_env = {"KEEPER_TEST_PASSFILE=/keeper/replication.pgpass"};
    // env(1) prints the environment exactly as exec'd (a shell would rebuild it).
    auto r = support::run_child({"/usr/bin/env"}, options);
    ::unsetenv("KEEPER_TEST_PASSFILE");
    CHECK(r.output.find("KEEPER_TEST_PASSFILE=/keeper/replication.pgpass\n") != std::string::npos);
    CHECK(r.output.find("KEEPER_TEST_PASSFILE=/inherited") == std::string::npos);
}

TEST_CASE("the options autoctl runs its tools with", "[child]") {
    support::ChildOptions options;
    options.search_path = true;
    options.stdin_path = "";
    options.time_limit = false;
    options.max_output = std::string().max_size();
    // A bare name is looked up in PATH only with search_path.
    CHECK(support::run_child({"sh", "-c", "exit 4"}, options).exit_code == 4);
    auto no_lookup = support::run_child({"sh", "-c", "exit 4"});
    CHECK(no_lookup.exit_code == 127);
    CHECK(no_lookup.output.find("cannot run sh") != std::string::npos);
    // The whole output is kept, not only the last 64 kB.
    auto big = support::run_child({"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}, options);
    CHECK(big.output.size() == 100000);
    // The signal that ended the child is reported.
    auto killed = support::run_child({"sh", "-c", "kill -TERM $$"}, options);
    CHECK(killed.exit_code == -1);
    CHECK(killed.term_signal == 15);
    CHECK_FALSE(killed.timed_out);
}

TEST_CASE("without a time limit a child outlives the default-sized timeout field", "[child]") {
    support::ChildOptions options;
    options.time_limit = false;
    options.timeout = milliseconds(100);
    auto r = support::run_child({"/bin/sleep", "0.5"}, options);
    CHECK(r.ok());
    CHECK_FALSE(r.timed_out);
}

TEST_CASE("autoctl's support::run_child is the keeper's runner with autoctl's conventions", "[child][autoctl]") {
    auto ok = support::run_operator_child({"sh", "-c", "echo from-path"});
    CHECK(ok.exit_status() == 0);
    CHECK(ok.output == "from-path\n");
    CHECK(support::run_operator_child({"sh", "-c", "kill -KILL $$"}).exit_status() == 128 + 9);
    CHECK(support::run_operator_child({"/nonexistent/tool"}).exit_status() == 127);
    CHECK_THROWS_AS(support::run_operator_child_or_throw({"sh", "-c", "exit 2"}, ""), support::Error);
}
