// How the monitor agent finds the etcd member on its own machine (compiled in here: no etcd needed).
#include "autoctl/etcd_leader_placement.h"

#include <catch2/catch.hpp>

using autoctl::host_is_local;
using autoctl::local_addresses;
using autoctl::url_host;

TEST_CASE("url_host takes the host of an etcd client URL", "[etcd-placement]") {
    CHECK(url_host("http://10.0.0.1:2379") == "10.0.0.1");
    CHECK(url_host("http://etcd-1.example:2379/") == "etcd-1.example");
    CHECK(url_host("http://[fd00::1]:2379") == "fd00::1");
    CHECK(url_host("10.0.0.2:2379") == "10.0.0.2");
}

TEST_CASE("an etcd member is on this machine when its host is one of this machine's addresses", "[etcd-placement]") {
    const auto mine = local_addresses();
    REQUIRE(mine.count("127.0.0.1") == 1);
    CHECK(host_is_local("127.0.0.1", mine));
    CHECK(host_is_local("localhost", mine));   // a name is resolved
    CHECK_FALSE(host_is_local("192.0.2.1", mine));  // TEST-NET-1: never configured here
    CHECK_FALSE(host_is_local("no-such-host.invalid", mine));
    CHECK_FALSE(host_is_local("127.0.0.1", {"10.9.9.9"}));
}
