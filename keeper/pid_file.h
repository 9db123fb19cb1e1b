// keeper.pid: one live keeper per node.
#pragma once

#include <optional>
#include <string>

namespace autofailover::keeper {

// True when the process exists and is not a zombie (killed, not yet reaped: in a
// container whose init reaps slowly, a killed postmaster stays a zombie for seconds).
bool process_alive(long pid);

// The pid in the file when that process is alive, else nullopt.
std::optional<long> live_pid_in(const std::string& pid_file);

// Holds keeper.pid for the lifetime of the object; throws when another live
// process holds it.
class PidFile {
public:
    explicit PidFile(std::string path);
    ~PidFile();
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

private:
    std::string path_;
};

}  // namespace autofailover::keeper
