#include "keeper/pid_file.h"

#include "support/atomic_file.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

// The whole file, as a write lock.
struct flock whole_file_write_lock() {
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0;
    return lock;
}

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

std::optional<long> pid_in(int fd) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return std::nullopt;
    char* end = nullptr;
    long pid = std::strtol(buf, &end, 10);
    if (end == buf || pid <= 0) return std::nullopt;
    return pid;
}

}  // namespace

bool process_alive(long pid) {
    if (pid <= 0) return false;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
    try {
        if (auto stat = support::read_file_if_exists("/proc/" + std::to_string(pid) + "/stat")) {
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
    // The holder writes its pid right after taking the lock: a locked file without a live pid
    // yet is a keeper starting up, asked again a few times.
    for (int attempt = 0; attempt < 50; ++attempt) {
        const int fd = ::open(pid_file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return std::nullopt;
        struct flock lock = whole_file_write_lock();
        const int rc = ::fcntl(fd, F_OFD_GETLK, &lock);
        const std::optional<long> pid = pid_in(fd);
        ::close(fd);
        if (rc != 0 || lock.l_type == F_UNLCK) return std::nullopt;
        if (pid && process_alive(*pid)) return pid;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
}

PidFile::PidFile(std::string path) : path_(std::move(path)) {
    for (int attempt = 0;; ++attempt) {
        const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) fail("cannot open", path_);
        struct flock lock = whole_file_write_lock();
        if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
            const int error = errno;
            ::close(fd);
            if (error != EAGAIN && error != EACCES) {
                errno = error;
                fail("cannot lock", path_);
            }
            auto other = live_pid_in(path_);
            throw std::runtime_error("another keeper " + (other ? "(pid " + std::to_string(*other) + ") " : "") +
                                     "runs for this node (" + path_ + " is locked); stop it first");
        }
        // A keeper that was exiting unlinked the file after we opened it: this lock is on a
        // name nobody sees any more, so start over with the file now at that path.
        struct stat mine {};
        struct stat current {};
        if (::fstat(fd, &mine) != 0 || ::stat(path_.c_str(), &current) != 0 || mine.st_ino != current.st_ino ||
            mine.st_dev != current.st_dev) {
            ::close(fd);
            if (attempt >= 10) throw std::runtime_error("cannot lock " + path_ + ": it keeps being replaced");
            continue;
        }
        const std::string text = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
            ::fsync(fd) != 0) {
            const int error = errno;
            ::close(fd);
            errno = error;
            fail("cannot write", path_);
        }
        fd_ = fd;
        return;
    }
}

PidFile::~PidFile() {
    // Unlinked while still locked: a keeper that opened it meanwhile finds the name gone
    // once it gets the lock, and starts over (see the constructor).
    ::unlink(path_.c_str());
    ::close(fd_);
}

}  // namespace autofailover::keeper
