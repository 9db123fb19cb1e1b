// SIGINT/SIGTERM turned into a flag for the commands that run until interrupted
// (watch, the metrics exporter); the previous handlers come back on scope exit.
#pragma once

#include <csignal>

namespace autoctl {

class StopSignals {
public:
    StopSignals();
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    bool requested() const;

private:
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

}  // namespace autoctl
