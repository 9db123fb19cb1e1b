// One line per event on stderr: "<time> LEVEL node=<name> ...". The keeper's
// log is its stderr (autoctl run in the foreground, systemd, or keeper.log).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace autofailover::keeper {

enum class LogLevel { Debug, Info, Warn, Error };

void log_line(LogLevel level, std::string_view message);
// Debug lines are printed only when AUTOFAILOVER_KEEPER_DEBUG is set.
bool debug_enabled();

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Warn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Error, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
    if (debug_enabled()) log_line(LogLevel::Debug, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace autofailover::keeper
