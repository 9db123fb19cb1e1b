// Running a helper program (initdb, pg_ctl, openssl) through keeper/child_process.h
// (the one runner of keeper and autoctl) and collecting its output,
// so a failure can be reported with what the program said.
#pragma once

#include <string>
#include <vector>

namespace autoctl {

struct ChildResult {
    int exit_status = -1;  // exit code, or 128 + signal number
    std::string output;    // stdout and stderr, interleaved
};

// argv[0] is looked up in PATH. Never goes through a shell.
ChildResult run_child(const std::vector<std::string>& argv);

// Like run_child, but throws CliError(LocalPostgresError) naming the command
// and quoting its output when it does not exit with 0.
std::string run_child_or_throw(const std::vector<std::string>& argv, const std::string& what_to_do);

}  // namespace autoctl
