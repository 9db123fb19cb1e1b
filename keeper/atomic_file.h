// Crash-safe file replacement: readers see the old or the new content, never a
// torn file, even across a power loss (write temp + fsync + rename + fsync dir).
#pragma once

#include <optional>
#include <string>

namespace autofailover::keeper {

void write_file_atomically(const std::string& path, const std::string& content, unsigned mode = 0600);
// nullopt when the file does not exist; throws on other errors.
std::optional<std::string> read_file_if_exists(const std::string& path);

}  // namespace autofailover::keeper
