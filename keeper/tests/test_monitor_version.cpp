// The keeper's and autoctl's reading of the monitor's version check
// (autofailover.library_version() against pg_extension.extversion).
#include "keeper/monitor_link.h"

#include <catch2/catch.hpp>

using autofailover::keeper::monitor_version_mismatch;

TEST_CASE("a monitor whose library matches its installed SQL gives no warning", "[monitor-version]") {
    CHECK(monitor_version_mismatch(std::string("1.0"), std::string("1.0")).empty());
}

TEST_CASE("a monitor whose library and installed SQL differ is named in a warning", "[monitor-version]") {
    const std::string w = monitor_version_mismatch(std::string("1.1"), std::string("1.0"));
    CHECK_THAT(w, Catch::Contains("library is version 1.1") && Catch::Contains("extension is version 1.0") &&
                      Catch::Contains("ALTER EXTENSION autofailover UPDATE"));
    CHECK_FALSE(monitor_version_mismatch(std::nullopt, std::string("1.0")).empty());
}
