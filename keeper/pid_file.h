// keeper.pid: exactly one live keeper per node. The keeper holds a write lock
// (fcntl, open-file-description lock) on keeper.pid for its whole life and
// writes its pid there only once it holds the lock. The lock, not the pid in the
// file, says whether a keeper runs: it dies with its process, and only its
// holder ever writes the file, so the pid in a locked file is the live keeper's.
#pragma once

#include <optional>
#include <string>

namespace autofailover::keeper {

// True when the process exists and is not a zombie (killed, not yet reaped: in a
// container whose init reaps slowly, a killed postmaster stays a zombie for seconds).
bool process_alive(long pid);

// The pid of the keeper that holds the lock on pid_file, else nullopt (no file,
// or nobody holds it: a pid left by a dead keeper is ignored, whatever runs now
// under that number).
std::optional<long> live_pid_in(const std::string& pid_file);

// Takes the lock on pid_file and writes this process's pid into it; holds both
// for the lifetime of the object. Throws when another process holds the lock.
class PidFile {
public:
    explicit PidFile(std::string path);
    ~PidFile();
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace autofailover::keeper
