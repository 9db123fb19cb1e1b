// What tells that a node which rejoined as a standby (after pg_rewind, or with
// "no rewind required") cannot follow its primary with the data directory it
// has, so that it must be re-initialized from a fresh base backup instead of
// being rewound and restarted again and again.
#pragma once

#include "libautofailover/lsn.h"

#include <cstdint>
#include <optional>
#include <string>

namespace autofailover::keeper {

// A server log line (standby side) that no retry can fix with this data
// directory: the WAL it needs is gone from the primary, or its history
// diverged from the primary's. Returns a one-line reason, or nullopt.
std::optional<std::string> unfollowable_reason(const std::string& server_log_text);

// One row of pg_stat_wal_receiver (absent: no walreceiver).
struct WalReceiverView {
    std::string status;  // streaming, starting, waiting, ...
    std::optional<Lsn> receive_start_lsn;
    std::optional<Lsn> flushed_lsn;
};

// True once the walreceiver proves the primary serves the WAL this standby
// needs: it streams and either received WAL past its start point or already
// holds everything the primary has flushed.
bool streams_from_primary(const std::optional<WalReceiverView>& receiver, std::optional<Lsn> primary_flush_lsn);

// Follows a growing server log from a byte offset (where it ended before a start
// of Postgres) and reports the first unfollowable_reason() in the new lines.
class ServerLogWatch {
public:
    ServerLogWatch(std::string path, std::uintmax_t offset) : path_(std::move(path)), offset_(offset) {}
    // Where the file ends now (0 when it does not exist).
    static std::uintmax_t end_of(const std::string& path);
    // Reads what was appended since the last call; complete lines only.
    std::optional<std::string> unfollowable_reason();

private:
    std::string path_;
    std::uintmax_t offset_;
    std::string partial_line_;
};

}  // namespace autofailover::keeper
