#include "autoctl/child_process.h"

#include "autoctl/exit_codes.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace autoctl {

namespace {

// Closes a file descriptor when it goes out of scope.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

}  // namespace

ChildResult run_child(const std::vector<std::string>& argv) {
    int fds[2];
    // O_CLOEXEC: only the child's stdout/stderr may hold the write end, or a
    // daemon it starts (pg_ctl start -> postmaster) would keep the pipe open.
    if (::pipe2(fds, O_CLOEXEC) != 0) throw CliError(ExitCode::LocalPostgresError, fmt::format("pipe: {}", std::strerror(errno)));
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);

    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid < 0) throw CliError(ExitCode::LocalPostgresError, fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
        ::dup2(write_end.get(), STDOUT_FILENO);
        ::dup2(write_end.get(), STDERR_FILENO);
        ::execvp(args[0], args.data());
        std::string msg = fmt::format("cannot run {}: {}\n", argv[0], std::strerror(errno));
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg.data(), msg.size());
        ::_exit(127);
    }
    write_end.reset();

    ChildResult result;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n > 0) {
            result.output.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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
