// Crash-safe file replacement: readers see the old or the new content, never a
// torn file, even across a power loss (write temp + fsync + rename + fsync dir).
#pragma once

#include <optional>
#include <string>

namespace autofailover::support {

void write_file_atomically(const std::string& path, const std::string& content, unsigned mode = 0600);
// Makes everything written under a Postgres data directory durable: one syncfs(2)
// per file system it spans (PGDATA, pg_wal and tablespaces when they are links
// elsewhere), instead of one fsync per file (measured on this VM: 0.2 s instead
// of 2.3-3.7 s for a freshly written 119 MB directory). Throws on errors.
void sync_data_directory(const std::string& pgdata);
// fsync of a directory, so renames inside it are durable. Throws on errors.
void fsync_directory(const std::string& dir);

// nullopt when the file does not exist; throws on other errors.
std::optional<std::string> read_file_if_exists(const std::string& path);

}  // namespace autofailover::support
