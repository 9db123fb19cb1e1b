#include "libautofailover/lsn.h"

#include <cstdio>

namespace autofailover {

namespace {

// One half of "HI/LO": 1 to 8 hex digits.
std::optional<std::uint32_t> parse_hex32(std::string_view text) {
    if (text.empty() || text.size() > 8) return std::nullopt;
    std::uint32_t value = 0;
    for (char c : text) {
        std::uint32_t digit = 0;
        if (c >= '0' && c <= '9')
            digit = static_cast<std::uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = static_cast<std::uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = static_cast<std::uint32_t>(c - 'A' + 10);
        else
            return std::nullopt;
        value = value * 16 + digit;
    }
    return value;
}

}  // namespace

std::optional<Lsn> parse_lsn(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto high = parse_hex32(text.substr(0, slash));
    const auto low = parse_hex32(text.substr(slash + 1));
    if (!high || !low) return std::nullopt;
    return (static_cast<Lsn>(*high) << 32) | *low;
}

std::string format_lsn(Lsn lsn) {
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xFFFFFFFFu));
    return buffer;
}

}  // namespace autofailover
