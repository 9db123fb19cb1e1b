// Exit codes of every autoctl command (documented in docs/cli.md): the one error type
// of keeper and autoctl, support/error.h, under autoctl's names.
#pragma once

#include "support/error.h"

#include <exception>

namespace autoctl {

using ExitCode = autofailover::support::ExitCode;
// Thrown by commands; main() prints "autoctl: <message>" and exits with code().
using CliError = autofailover::support::Error;

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
