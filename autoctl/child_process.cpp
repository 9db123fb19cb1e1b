#include "autoctl/child_process.h"

#include "autoctl/exit_codes.h"

#include <fmt/format.h>

#include "keeper/child_process.h"

#include <stdexcept>
#include <utility>

namespace autoctl {

ChildResult run_child(const std::vector<std::string>& argv) {
    // The keeper's runner, set up the way autoctl always ran its tools: PATH lookup,
    // the operator's stdin, no deadline, the whole output kept.
    autofailover::keeper::ChildOptions options;
    options.search_path = true;
    options.stdin_path = "";
    options.time_limit = false;
    options.max_output = std::string().max_size();
    autofailover::keeper::ChildResult r;
    try {
        r = autofailover::keeper::run_child(argv, options);
    } catch (const std::runtime_error& e) {
        throw CliError(ExitCode::LocalPostgresError, e.what());
    }
    ChildResult result;
    result.exit_status = r.term_signal != 0 ? 128 + r.term_signal : r.exit_code;
    result.output = std::move(r.output);
    return result;
}

std::string run_child_or_throw(const std::vector<std::string>& argv, const std::string& what_to_do) {
    ChildResult r = run_child(argv);
    if (r.exit_status != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        throw CliError(ExitCode::LocalPostgresError,
                       fmt::format("`{}` failed (exit {}):\n{}{}", cmd, r.exit_status, r.output, what_to_do));
    }
    return r.output;
}

}  // namespace autoctl
