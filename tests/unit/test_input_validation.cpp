// Hosts and node names the monitor accepts and a keeper writes into pg_hba.conf
// (security review #4 and #15).
#include "libautofailover/input_validation.h"

#include <catch2/catch.hpp>

using autofailover::host_problem;
using autofailover::node_name_problem;

TEST_CASE("addresses and host names are accepted", "[validation]") {
    for (const char* host : {"127.0.0.1", "10.0.0.5", "::1", "fd00::17", "2001:db8::1", "localhost", "db1",
                             "db-1.example.com", "a.b.c.d.e", "xn--bcher-kva.example", "DB1.Example.COM",
                             "1db.example"})
        CHECK(host_problem(host) == "");
}

TEST_CASE("pg_hba keywords, patterns and networks are not hosts", "[validation][security]") {
    // Each of these, copied into pg_hba.conf's address field, means more than one host.
    for (const char* host : {"all", "ALL", "samehost", "samenet", "SameNet", ".com", ".example.com", "+admins",
                             "@hosts.txt", "10.0.0.0/8", "::/0", "0.0.0.0/0"})
        CHECK_FALSE(host_problem(host) == "");
    CHECK(host_problem("all") == "\"all\" is a pg_hba.conf keyword, not a host name");
}

TEST_CASE("malformed hosts are refused with a reason", "[validation]") {
    const std::string long_label(64, 'a');
    const std::string too_long = std::string(120, 'a') + "." + std::string(120, 'b') + "." + std::string(20, 'c');
    for (const std::string& host :
         {std::string(), std::string("h ost"), std::string("h'ost"), std::string("host=evil"), std::string("h\nost"),
          std::string("-oProxy"), std::string("host-"), std::string("a..b"), std::string("example.com."),
          std::string("1.2.3"), std::string("123"), std::string("node1.10"), std::string("999.1.1.1"), std::string("fe80::1%eth0"),
          std::string("::g"), long_label + ".example", too_long, std::string("h\0st", 4), std::string("hôst")})
        CHECK_FALSE(host_problem(host) == "");
    CHECK(host_problem("-oProxy") == "a host name label neither starts nor ends with a hyphen");
}

TEST_CASE("node names: printable UTF-8 up to 63 characters", "[validation]") {
    CHECK(node_name_problem("node_a") == "");
    CHECK(node_name_problem("x'); DROP TABLE autofailover.nodes; --") == "");
    CHECK(node_name_problem("ünïcødé ☃") == "");
    std::string accents;
    for (int i = 0; i < 63; ++i) accents += "é";
    CHECK(node_name_problem(accents) == "");          // 63 characters, 126 bytes
    CHECK_FALSE(node_name_problem(accents + "é") == "");  // 64 characters
    CHECK(node_name_problem("😀") == "");             // 4-byte UTF-8
    CHECK(node_name_problem("") == "1 to 63 characters expected");
}

TEST_CASE("node names with control or invisible format characters are refused", "[validation][security]") {
    // U+202E RIGHT-TO-LEFT OVERRIDE: "ünïcödé\u202Egnp.exe" displays as "...exe.png" (review #15).
    CHECK(node_name_problem("ünïcödé\u202Egnp.exe") ==
          "invisible format characters (bidi overrides, zero-width, separators) are not allowed");
    for (const char* name : {"a\u200Bb", "a\u200Db", "a\u2066b", "a\uFEFFb", "a\u00ADb", "a\u2028b", "a\u2029b",
                             "tag\U000E0041", "a\u061Cb"})
        CHECK_FALSE(node_name_problem(name) == "");
    for (const char* name : {"new\nline", "tab\there", "bell\a", "del\x7f", "c1\u0085", "c1\u009b"})
        CHECK(node_name_problem(name) == "control characters are not allowed");
    CHECK(node_name_problem(std::string("nul\0byte", 8)) == "control characters are not allowed");
}

TEST_CASE("node names must be valid UTF-8", "[validation]") {
    for (const char* name : {"\xff", "a\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"})
        CHECK(node_name_problem(name) == "not valid UTF-8");
}
