// The write lease of the local primary: the keeper's fencing deadline handed to
// Postgres (autofailover_node, docs/write-lease.md), so that a primary whose
// keeper is frozen or cut off refuses writes on time by itself.
#pragma once

#include "keeper/local_postgres.h"

#include <chrono>
#include <optional>
#include <string>

namespace autofailover::keeper {

class WriteLease {
public:
    // `left`: time until this primary would have to fence; empty when it never
    // would (no standby to fail over to). Creates the extension on first use.
    // Never throws: a failure is logged once and retried at the next call.
    void renew(LocalPostgres& pg, std::optional<std::chrono::milliseconds> left, const std::string& node);

private:
    std::string last_error_;
};

}  // namespace autofailover::keeper
