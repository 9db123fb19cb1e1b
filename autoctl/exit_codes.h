// Exit codes of every autoctl command (documented in docs/cli.md) and the
// exception that carries one up to main().
#pragma once

#include <stdexcept>
#include <string>

namespace autoctl {

enum class ExitCode : int {
    Ok = 0,
    BadArguments = 1,       // wrong or missing options, refused operation (what to do is in the message)
    MonitorError = 2,       // monitor unreachable, or it refused the request
    Timeout = 3,            // --wait expired before the formation was healthy again
    LocalPostgresError = 4, // initdb, pg_ctl, local server or keeper failed
};

// Thrown by commands; main() prints "autoctl: <message>" and exits with code().
class CliError : public std::runtime_error {
public:
    CliError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ExitCode code() const { return code_; }

private:
    ExitCode code_;
};

// Ends the command with an exit status chosen elsewhere (the keeper loop's own
// codes), without a message.
class ExitWith : public std::exception {
public:
    explicit ExitWith(int status) : status_(status) {}
    int status() const { return status_; }
    const char* what() const noexcept override { return "exit"; }

private:
    int status_;
};

}  // namespace autoctl
