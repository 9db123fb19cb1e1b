// A fresh copy of the primary as this node's data directory: pg_basebackup (or,
// with backup integration, a pgBackRest restore) into a temporary directory that
// replaces PGDATA only once complete.
#pragma once

#include "keeper/action_context.h"

#include <string>

namespace autofailover::keeper {

// A fresh copy of the primary into PGDATA: from the latest backup when backup
// integration is on and one exists, else pg_basebackup into <pgdata>.basebackup.
// PGDATA is either the old directory or a complete copy, never a half-written one;
// the old directory is deleted, or kept as `keep_old_as` when that is not empty.
void base_backup(ActionContext& ctx, const std::string& host, int port, const std::string& keep_old_as = "");

// base_backup, then started as a standby of host:port without the slots it copied.
void reinit_from_primary(ActionContext& ctx, const std::string& host, int port, const std::string& keep_old_as = "");

// Where a node that left the replication stream keeps a data directory we may not
// delete: "<pgdata>.diverged-<UTC time>".
std::string diverged_copy_path(const std::string& pgdata);

}  // namespace autofailover::keeper
