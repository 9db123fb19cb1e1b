#include "keeper/keeper_log.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace autofailover::keeper {

bool debug_enabled() {
    static const bool enabled = std::getenv("AUTOFAILOVER_KEEPER_DEBUG") != nullptr;
    return enabled;
}

void log_line(LogLevel level, std::string_view message) {
    const char* name = level == LogLevel::Debug ? "DEBUG"
                       : level == LogLevel::Info ? "INFO"
                       : level == LogLevel::Warn ? "WARN"
                                                 : "ERROR";
    auto now = std::chrono::system_clock::now();
    std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &utc);
    // One fprintf per line so concurrent writers (pg_ctl output) never split it.
    std::fprintf(stderr, "%s.%03d %s %.*s\n", stamp, static_cast<int>(millis), name,
                 static_cast<int>(message.size()), message.data());
    std::fflush(stderr);
}

}  // namespace autofailover::keeper
