// The child-process runner the keeper uses for initdb, pg_ctl, pg_basebackup, pg_rewind.
#include "keeper/child_process.h"

#include "autoctl/child_process.h"
#include "autoctl/exit_codes.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

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

TEST_CASE("the options autoctl runs its tools with", "[child]") {
    ChildOptions options;
    options.search_path = true;
    options.stdin_path = "";
    options.time_limit = false;
    options.max_output = std::string().max_size();
    // A bare name is looked up in PATH only with search_path.
    CHECK(run_child({"sh", "-c", "exit 4"}, options).exit_code == 4);
    auto no_lookup = run_child({"sh", "-c", "exit 4"});
    CHECK(no_lookup.exit_code == 127);
    CHECK(no_lookup.output.find("cannot run sh") != std::string::npos);
    // The whole output is kept, not only the last 64 kB.
    auto big = run_child({"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}, options);
    CHECK(big.output.size() == 100000);
    // The signal that ended the child is reported.
    auto killed = run_child({"sh", "-c", "kill -TERM $$"}, options);
    CHECK(killed.exit_code == -1);
    CHECK(killed.term_signal == 15);
    CHECK_FALSE(killed.timed_out);
}

TEST_CASE("without a time limit a child outlives the default-sized timeout field", "[child]") {
    ChildOptions options;
    options.time_limit = false;
    options.timeout = milliseconds(100);
    auto r = run_child({"/bin/sleep", "0.5"}, options);
    CHECK(r.ok());
    CHECK_FALSE(r.timed_out);
}

TEST_CASE("autoctl's run_child is the keeper's runner with autoctl's conventions", "[child][autoctl]") {
    auto ok = autoctl::run_child({"sh", "-c", "echo from-path"});
    CHECK(ok.exit_status == 0);
    CHECK(ok.output == "from-path\n");
    CHECK(autoctl::run_child({"sh", "-c", "kill -KILL $$"}).exit_status == 128 + 9);
    CHECK(autoctl::run_child({"/nonexistent/tool"}).exit_status == 127);
    CHECK_THROWS_AS(autoctl::run_child_or_throw({"sh", "-c", "exit 2"}, ""), autoctl::CliError);
}
