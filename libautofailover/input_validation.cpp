#include "libautofailover/input_validation.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <utility>

namespace autofailover {
namespace {

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (x != b[i]) return false;
    }
    return true;
}

bool parses_as(int family, std::string_view host) {
    unsigned char buffer[16];
    const std::string text(host);
    return ::inet_pton(family, text.c_str(), buffer) == 1;
}

// Unicode format characters (category Cf, Unicode 15) and the line/paragraph separators.
constexpr std::array<std::pair<std::uint32_t, std::uint32_t>, 22> kInvisible = {{
    {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},   {0x070F, 0x070F},
    {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},   {0x200B, 0x200F},   {0x2028, 0x202E},
    {0x2060, 0x2064},   {0x2066, 0x206F},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD},
    {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
    {0xE0020, 0xE007F}, {0xFFFE, 0xFFFF},
}};

bool is_invisible(std::uint32_t c) {
    for (const auto& [first, last] : kInvisible)
        if (c >= first && c <= last) return true;
    return false;
}

// Decodes one UTF-8 character at `at`; false on any malformed, overlong or surrogate sequence.
bool next_code_point(std::string_view text, std::size_t& at, std::uint32_t& out) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(at);
    std::size_t length = 0;
    std::uint32_t min = 0;
    if (lead < 0x80) {
        out = lead;
        ++at;
        return true;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2, out = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, out = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, out = lead & 0x07, min = 0x10000;
    } else {
        return false;
    }
    if (at + length > text.size()) return false;
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(at + i) & 0xC0) != 0x80) return false;
        out = (out << 6) | (byte(at + i) & 0x3F);
    }
    if (out < min || out > 0x10FFFF || (out >= 0xD800 && out <= 0xDFFF)) return false;
    at += length;
    return true;
}

}  // namespace

std::string host_problem(std::string_view host) {
    if (host.empty() || host.size() > 253) return "a host name of 1 to 253 characters or an IP address expected";
    if (host.find('/') != std::string_view::npos) return "a single address expected, not a network (no /prefix)";
    if (host.find(':') != std::string_view::npos)
        return parses_as(AF_INET6, host) ? "" : "not a valid IPv6 address (zone ids such as %eth0 are not accepted)";
    if (parses_as(AF_INET, host)) return "";
    std::size_t start = 0;
    bool last_label_numeric = true;
    while (start <= host.size()) {
        std::size_t end = host.find('.', start);
        if (end == std::string_view::npos) end = host.size();
        const std::string_view label = host.substr(start, end - start);
        if (label.empty() || label.size() > 63)
            return "host name labels are 1 to 63 characters, separated by single dots (no leading or trailing dot)";
        bool numeric = true;
        for (char c : label) {
            if (!is_ascii_letter(c) && !is_ascii_digit(c) && c != '-')
                return "a host name has only letters, digits, dots and hyphens";
            if (!is_ascii_digit(c)) numeric = false;
        }
        if (label.front() == '-' || label.back() == '-') return "a host name label neither starts nor ends with a hyphen";
        last_label_numeric = numeric;
        start = end + 1;
    }
    if (last_label_numeric) return "neither an IP address nor a host name (its last label is all digits)";
    for (std::string_view keyword : {"all", "samehost", "samenet"})
        if (equals_ignoring_case(host, keyword))
            return "\"" + std::string(keyword) + "\" is a pg_hba.conf keyword, not a host name";
    return "";
}

std::string node_name_problem(std::string_view name) {
    std::size_t at = 0;
    std::size_t characters = 0;
    while (at < name.size()) {
        std::uint32_t c = 0;
        if (!next_code_point(name, at, c)) return "not valid UTF-8";
        if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return "control characters are not allowed";
        if (is_invisible(c)) return "invisible format characters (bidi overrides, zero-width, separators) are not allowed";
        ++characters;
    }
    if (characters < 1 || characters > 63) return "1 to 63 characters expected";
    return "";
}

}  // namespace autofailover
