// PostgreSQL WAL positions ("16/B374D848") as plain 64-bit integers.
#pragma once
#include "libautofailover/no_postgres.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace autofailover {

using Lsn = std::uint64_t;

std::optional<Lsn> parse_lsn(std::string_view text);
std::string format_lsn(Lsn lsn);

}  // namespace autofailover
