// The one child-process runner of keeper and autoctl: runs the PostgreSQL tools
// (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata) and helpers without a
// shell. While a long child runs, `tick` is called every `tick_every` so the keeper
// keeps reporting to the monitor.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace autofailover::support {

struct ChildResult {
    int exit_code = -1;  // -1: killed by a signal or timed out
    bool timed_out = false;
    bool cancelled = false;
    int term_signal = 0;  // the signal that ended the child (0: it exited, or we killed it)
    std::string output;  // stdout + stderr, truncated to the last 64 kB
    bool ok() const { return exit_code == 0; }
    // The shell's convention: the exit code, or 128 + the signal that ended the child.
    int exit_status() const { return term_signal != 0 ? 128 + term_signal : exit_code; }
};

struct ChildOptions {
    std::chrono::milliseconds timeout{std::chrono::minutes(10)};
    std::function<void()> tick;  // may be empty
    std::chrono::milliseconds tick_every{1000};
    std::vector<std::string> extra_env;  // "NAME=value"
    std::string stdin_path = "/dev/null";  // "": the child inherits ours (autoctl)
    // false: no deadline at all (autoctl: the operator interrupts a slow tool).
    bool time_limit = true;
    // true: argv[0] may be a bare name looked up in PATH (autoctl); the keeper passes absolute paths.
    bool search_path = false;
    std::size_t max_output = 65536;  // keep only the last max_output bytes
    // Polled while the child runs: true kills it (SIGTERM, then SIGKILL) and the result says cancelled.
    std::function<bool()> cancel;
};

// argv[0] is an absolute path unless options.search_path. Never throws for a failing child; throws only
// when fork/pipe fail.
ChildResult run_child(const std::vector<std::string>& argv, const ChildOptions& options = {});

// autoctl's conventions: argv[0] looked up in PATH, the operator's stdin, no deadline,
// the whole output kept. Throws Error(LocalPostgresError) only when fork/pipe fail.
ChildResult run_operator_child(const std::vector<std::string>& argv);
// The same; throws Error(LocalPostgresError) naming the command and quoting its output,
// followed by what_to_do, when it does not exit with 0. Returns the output.
std::string run_operator_child_or_throw(const std::vector<std::string>& argv, const std::string& what_to_do);

// The last lines of a tool's output, for one-line error messages.
std::string tail_of(const std::string& output, std::size_t max_chars = 300);

}  // namespace autofailover::support
