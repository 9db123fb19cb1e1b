#include "support/conninfo.h"

#include <regex>

namespace autofailover::support {

std::string conninfo_quote(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

std::string redact_conninfo(const std::string& conninfo) {
    // URI form: scheme://user:password@host... and the query parameter password=... (ends at '&').
    static const std::regex uri_password(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
    static const std::regex query_password(R"(([?&]password=)[^&]*)");
    // key=value form as libpq parses it: a quoted value ends at its closing quote (or the end, unterminated),
    // an unquoted one at whitespace; a backslash escapes the next character in both, so `s3\ cret` is one value.
    static const std::regex kv_password(R"(((?:^|\s)password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)*\\?))");
    if (conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0) {
        std::string out = std::regex_replace(conninfo, uri_password, "$1:****@");
        return std::regex_replace(out, query_password, "$1****");
    }
    return std::regex_replace(conninfo, kv_password, "$1****");
}

std::string conninfo_without_password(const std::string& conninfo) {
    static const std::regex uri_password(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
    static const std::regex query_password(R"(([?&])password=[^&]*(&|$))");
    static const std::regex kv_password(R"((^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)\s*)");
    std::string out = std::regex_replace(conninfo, uri_password, "$1@");
    if (out.rfind("postgres", 0) == 0) {
        out = std::regex_replace(out, query_password, "$1");
        if (!out.empty() && (out.back() == '&' || out.back() == '?')) out.pop_back();
        return out;
    }
    out = std::regex_replace(out, kv_password, "$1");
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

std::string conninfo_host(const std::string& conninfo) {
    std::smatch m;
    static const std::regex uri_host(R"(^postgres(?:ql)?://(?:[^@/]*@)?(\[[^\]]*\]|[^:/,?]*))");
    if (std::regex_search(conninfo, m, uri_host)) {
        std::string host = m[1].str();
        if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
        return host;
    }
    static const std::regex kv_host(R"((?:^|\s)host\s*=\s*'?([^'\s]*))");
    if (std::regex_search(conninfo, m, kv_host)) return m[1].str();
    return "";
}

std::vector<std::string> conninfo_hosts(const std::string& conninfo) {
    std::string list;
    std::smatch m;
    static const std::regex uri_hosts(R"(^postgres(?:ql)?://(?:[^@/]*@)?([^/?]*))");
    static const std::regex kv_hosts(R"((?:^|\s)host\s*=\s*'?([^'\s]*))");
    const bool uri = std::regex_search(conninfo, m, uri_hosts);
    if (uri || std::regex_search(conninfo, m, kv_hosts)) list = m[1].str();
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        const std::size_t comma = list.find(',', start);
        std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (uri) {
            if (!item.empty() && item.front() == '[') {
                item = item.substr(1, item.find(']') == std::string::npos ? std::string::npos : item.find(']') - 1);
            } else {
                item = item.substr(0, item.find(':'));
            }
        }
        if (!item.empty()) out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

}  // namespace autofailover::support
