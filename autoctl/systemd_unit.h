// `autoctl show systemd`: a unit file that keeps a node's keeper (or a
// monitor's postmaster) running under the current OS user.
#pragma once

#include <string>

namespace autoctl {

std::string systemd_unit_for(const std::string& pgdata);

}  // namespace autoctl
