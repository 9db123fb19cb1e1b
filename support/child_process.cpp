#include "support/child_process.h"

#include "support/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace autofailover::support {

ChildResult run_child(const std::vector<std::string>& argv, const ChildOptions& options) {
    using Clock = std::chrono::steady_clock;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));

    // Prepared before fork: the child only calls async-signal-safe functions.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // extra_env wins over an inherited variable of the same name (getenv takes the first):
    // a PGPASSFILE in the operator's environment must not hide the keeper's own.
    std::vector<std::string> env_strings;
    const auto overridden = [&](const char* inherited) {
        for (const auto& e : options.extra_env) {
            const auto eq = e.find('=');
            if (eq != std::string::npos && std::strncmp(inherited, e.c_str(), eq + 1) == 0) return true;
        }
        return false;
    };
    for (char** e = environ; *e; ++e)
        if (!overridden(*e)) env_strings.emplace_back(*e);
    for (const auto& e : options.extra_env) env_strings.push_back(e);
    std::vector<char*> env;
    for (auto& e : env_strings) env.push_back(e.data());
    env.push_back(nullptr);
    const std::string exec_failed = "cannot run " + argv.at(0) + "\n";

    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        if (!options.stdin_path.empty()) {
            int in = ::open(options.stdin_path.c_str(), O_RDONLY);
            if (in >= 0) ::dup2(in, 0);
        }
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        if (options.search_path)
            ::execvpe(args[0], args.data(), env.data());
        else
            ::execve(args[0], args.data(), env.data());
        ssize_t ignored = ::write(2, exec_failed.data(), exec_failed.size());
        (void)ignored;
        ::_exit(127);
    }
    ::close(fds[1]);

    ChildResult result;
    const auto deadline = Clock::now() + options.timeout;
    auto next_tick = Clock::now() + options.tick_every;
    bool pipe_open = true;
    int status = 0;
    bool reaped = false;
    while (!reaped) {
        if (pipe_open) {
            pollfd p{fds[0], POLLIN, 0};
            int n = ::poll(&p, 1, 100);
            if (n > 0) {
                char buf[4096];
                ssize_t got = ::read(fds[0], buf, sizeof buf);
                if (got > 0) {
                    result.output.append(buf, static_cast<std::size_t>(got));
                    if (result.output.size() > options.max_output)
                        result.output.erase(0, result.output.size() - options.max_output);
                } else if (got == 0) {
                    pipe_open = false;
                }
            }
        } else {
            ::usleep(50 * 1000);
        }
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) reaped = true;
        const bool cancel = !reaped && options.cancel && options.cancel();
        if (!reaped && (cancel || (options.time_limit && Clock::now() > deadline))) {
            ::kill(pid, SIGTERM);
            ::usleep(500 * 1000);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            result.timed_out = !cancel;
            result.cancelled = cancel;
            reaped = true;
        }
        if (!reaped && options.tick && Clock::now() >= next_tick) {
            options.tick();
            next_tick = Clock::now() + options.tick_every;
        }
    }
    // Drain what is left (a grandchild such as the postmaster never holds this pipe).
    for (;;) {
        pollfd p{fds[0], POLLIN, 0};
        if (!pipe_open || ::poll(&p, 1, 0) <= 0) break;
        char buf[4096];
        ssize_t got = ::read(fds[0], buf, sizeof buf);
        if (got <= 0) break;
        result.output.append(buf, static_cast<std::size_t>(got));
    }
    ::close(fds[0]);
    if (!result.timed_out && !result.cancelled && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (!result.timed_out && !result.cancelled && WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
    return result;
}

ChildResult run_operator_child(const std::vector<std::string>& argv) {
    ChildOptions options;
    options.search_path = true;
    options.stdin_path = "";
    options.time_limit = false;
    options.max_output = std::string().max_size();
    try {
        return run_child(argv, options);
    } catch (const std::runtime_error& e) {
        throw Error(ExitCode::LocalPostgresError, e.what());
    }
}

std::string run_operator_child_or_throw(const std::vector<std::string>& argv, const std::string& what_to_do) {
    ChildResult r = run_operator_child(argv);
    if (r.exit_status() != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        throw Error(ExitCode::LocalPostgresError,
                    "`" + cmd + "` failed (exit " + std::to_string(r.exit_status()) + "):\n" + r.output + what_to_do);
    }
    return r.output;
}

std::string tail_of(const std::string& output, std::size_t max_chars) {
    std::string s = output;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    if (s.size() > max_chars) s = "..." + s.substr(s.size() - max_chars);
    for (auto& c : s)
        if (c == '\n') c = ' ';
    return s;
}

}  // namespace autofailover::support
