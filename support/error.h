// The one error type of keeper and autoctl that ends a process: it carries the exit
// code (docs/cli.md "Exit codes"), so every main() prints what() and exits with code().
#pragma once

#include <stdexcept>
#include <string>

namespace autofailover::support {

enum class ExitCode : int {
    Ok = 0,
    BadArguments = 1,        // wrong or missing options, refused operation (what to do is in the message)
    MonitorError = 2,        // monitor unreachable, or it refused the request
    Timeout = 3,             // --wait expired before the formation was healthy again
    LocalPostgresError = 4,  // initdb, pg_ctl, local server or keeper failed
};

class Error : public std::runtime_error {
public:
    Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ExitCode code() const { return code_; }
    int exit_code() const { return static_cast<int>(code_); }

private:
    ExitCode code_;
};

}  // namespace autofailover::support
