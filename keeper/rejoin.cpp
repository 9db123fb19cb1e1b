#include "keeper/rejoin.h"

#include <fstream>
#include <regex>
#include <sys/stat.h>

namespace autofailover::keeper {

std::optional<std::string> unfollowable_reason(const std::string& text) {
    // Messages of PostgreSQL 15 (walsender errors as the standby logs them, and
    // the standby's own timeline checks). A primary that is merely unreachable
    // is not among them: that is retried, never a reason to re-copy.
    static const std::regex removed(R"(requested WAL segment (\w+) has already been removed)");
    static const std::regex not_in_history(R"(requested starting point \S+ on timeline \d+ is not in this server's history)");
    static const std::regex forked(R"(new timeline \d+ forked off current database system timeline \d+ before current recovery point \S+)");
    static const std::regex other_system(R"(database system identifier differs between the primary and standby)");
    std::smatch m;
    if (std::regex_search(text, m, removed))
        return "the primary has already removed WAL segment " + m[1].str() + " that this node needs";
    if (std::regex_search(text, m, not_in_history)) return "the primary's timeline history lacks this node's position (" + m[0].str() + ")";
    if (std::regex_search(text, m, forked)) return "this node's history diverged from the primary's (" + m[0].str() + ")";
    if (std::regex_search(text, m, other_system)) return "the primary is a different database system";
    return std::nullopt;
}

bool streams_from_primary(const std::optional<WalReceiverView>& r, std::optional<Lsn> primary_flush_lsn) {
    if (!r || r->status != "streaming" || !r->flushed_lsn) return false;
    // A walsender that cannot find the first segment fails before sending anything,
    // so WAL past the start point is the proof; an idle primary with nothing newer
    // to send proves it by being no further than what we hold.
    if (r->receive_start_lsn && *r->flushed_lsn > *r->receive_start_lsn) return true;
    return primary_flush_lsn && *r->flushed_lsn >= *primary_flush_lsn;
}

std::uintmax_t ServerLogWatch::end_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uintmax_t>(st.st_size) : 0;
}

std::optional<std::string> ServerLogWatch::unfollowable_reason() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return std::nullopt;
    in.seekg(0, std::ios::end);
    const auto end = static_cast<std::uintmax_t>(in.tellg());
    if (end < offset_) offset_ = 0;  // rotated or truncated: read it all
    if (end == offset_) return std::nullopt;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk(end - offset_, '\0');
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    chunk.resize(static_cast<std::size_t>(in.gcount()));
    offset_ += chunk.size();
    std::string text = partial_line_ + chunk;
    const auto last_newline = text.rfind('\n');
    if (last_newline == std::string::npos) {
        partial_line_ = text;
        return std::nullopt;
    }
    partial_line_ = text.substr(last_newline + 1);
    text.resize(last_newline + 1);
    return keeper::unfollowable_reason(text);
}

}  // namespace autofailover::keeper
