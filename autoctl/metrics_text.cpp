#include "autoctl/metrics_text.h"

namespace autoctl {

namespace {
std::string escape_help(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

// Postgres prints infinities as Infinity; the text format wants +Inf/-Inf.
std::string prometheus_value(const std::string& value) {
    if (value == "Infinity") return "+Inf";
    if (value == "-Infinity") return "-Inf";
    return value;
}
}  // namespace

std::string render_prometheus(const std::vector<MetricRow>& rows) {
    std::string out;
    std::string current;
    for (const auto& row : rows) {
        if (row.name != current) {
            current = row.name;
            out += "# HELP " + row.name + " " + escape_help(row.help) + "\n";
            out += "# TYPE " + row.name + " " + row.type + "\n";
        }
        out += row.name + row.labels + " " + prometheus_value(row.value) + "\n";
    }
    return out;
}

}  // namespace autoctl
