#include "keeper/pid_file.h"

#include "keeper/atomic_file.h"

#include <cerrno>
#include <csignal>
#include <stdexcept>
#include <unistd.h>

namespace autofailover::keeper {

bool process_alive(long pid) {
    if (pid <= 0) return false;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
    try {
        if (auto stat = read_file_if_exists("/proc/" + std::to_string(pid) + "/stat")) {
            auto paren = stat->rfind(')');
            if (paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z') return false;
        }
    } catch (const std::exception&) {
        // vanished between kill() and the read: dead
        return false;
    }
    return true;
}

std::optional<long> live_pid_in(const std::string& pid_file) {
    auto content = read_file_if_exists(pid_file);
    if (!content) return std::nullopt;
    long pid = 0;
    try {
        pid = std::stol(*content);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (!process_alive(pid)) return std::nullopt;
    return pid;
}

PidFile::PidFile(std::string path) : path_(std::move(path)) {
    if (auto other = live_pid_in(path_); other && *other != ::getpid())
        throw std::runtime_error("another keeper (pid " + std::to_string(*other) + ") runs for this node (" + path_ +
                                 "); stop it first");
    write_file_atomically(path_, std::to_string(::getpid()) + "\n", 0644);
}

PidFile::~PidFile() {
    auto pid = live_pid_in(path_);
    if (pid && *pid == ::getpid()) ::unlink(path_.c_str());
}

}  // namespace autofailover::keeper
