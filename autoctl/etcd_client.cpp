#include "autoctl/etcd_client.h"

#include <fmt/format.h>
#include <httplib.h>
#include <cstring>
#include <nlohmann/json.hpp>

#include <regex>

namespace autoctl::etcd {
namespace {

using Json = nlohmann::json;

constexpr const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// etcd's gateway spells int64 as JSON strings, and leaves out zero values.
std::int64_t int_field(const Json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return 0;
    if (it->is_string()) return std::stoll(it->get<std::string>());
    return it->get<std::int64_t>();
}

std::uint64_t unsigned_field(const Json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return 0;
    if (it->is_string()) return std::stoull(it->get<std::string>());
    return it->get<std::uint64_t>();
}

KeyValue to_key_value(const Json& j) {
    KeyValue kv;
    kv.key = base64_decode(j.value("key", ""));
    kv.value = base64_decode(j.value("value", ""));
    kv.create_revision = int_field(j, "create_revision");
    kv.mod_revision = int_field(j, "mod_revision");
    kv.lease = int_field(j, "lease");
    return kv;
}

// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(std::string prefix) {
    while (!prefix.empty()) {
        unsigned char last = static_cast<unsigned char>(prefix.back());
        if (last < 0xff) {
            prefix.back() = static_cast<char>(last + 1);
            return prefix;
        }
        prefix.pop_back();
    }
    return std::string(1, '\0');
}

}  // namespace

std::string base64_encode(const std::string& raw) {
    std::string out;
    std::size_t i = 0;
    while (i + 2 < raw.size()) {
        const unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8) |
                           static_cast<unsigned char>(raw[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
        i += 3;
    }
    if (i + 1 == raw.size()) {
        const unsigned v = static_cast<unsigned char>(raw[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == raw.size()) {
        const unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string base64_decode(const std::string& encoded) {
    std::string out;
    unsigned v = 0;
    int bits = 0;
    for (char c : encoded) {
        if (c == '=') break;
        const char* p = std::strchr(kAlphabet, c);
        if (p == nullptr || c == '\0') throw EtcdError("etcd answered with invalid base64");
        v = (v << 6) | static_cast<unsigned>(p - kAlphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((v >> bits) & 0xff);
        }
    }
    return out;
}

std::vector<std::string> parse_endpoints(const std::string& list) {
    static const std::regex endpoint_re(R"(http://[A-Za-z0-9._-]+:[0-9]{1,5})");
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t comma = list.find(',', start);
        std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty() && item.back() == '/') item.pop_back();
        if (!std::regex_match(item, endpoint_re))
            throw EtcdError(fmt::format("etcd endpoint \"{}\": expected http://host:port", item));
        out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (out.empty()) throw EtcdError("no etcd endpoint given");
    return out;
}

Client::Client(std::vector<std::string> endpoints, std::chrono::milliseconds request_timeout)
    : endpoints_(std::move(endpoints)), request_timeout_(request_timeout) {
    if (endpoints_.empty()) throw EtcdError("no etcd endpoint given");
}

std::optional<std::string> Client::post_once(const std::string& endpoint, const std::string& path,
                                             const std::string& body, std::string& errors) {
    httplib::Client http(endpoint);
    const auto seconds = request_timeout_.count() / 1000;
    const auto micros = (request_timeout_.count() % 1000) * 1000;
    http.set_connection_timeout(seconds, micros);
    http.set_read_timeout(seconds, micros);
    http.set_write_timeout(seconds, micros);
    auto result = http.Post(path, body, "application/json");
    if (!result) {
        errors += fmt::format("{}: {}; ", endpoint, httplib::to_string(result.error()));
        return std::nullopt;
    }
    if (result->status != 200) {
        errors += fmt::format("{}: HTTP {} {}; ", endpoint, result->status, result->body.substr(0, 200));
        return std::nullopt;
    }
    return result->body;
}

std::string Client::post(const std::string& path, const std::string& body) {
    std::string errors;
    for (std::size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
        const std::size_t index = (preferred_ + attempt) % endpoints_.size();
        if (auto answer = post_once(endpoints_[index], path, body, errors)) {
            preferred_ = index;
            return *answer;
        }
    }
    throw EtcdError(fmt::format("no etcd endpoint answered {}: {}", path, errors));
}

LeaseGrant Client::grant_lease(std::int64_t ttl_seconds) {
    Json j = Json::parse(post("/v3/lease/grant", Json{{"TTL", std::to_string(ttl_seconds)}}.dump()));
    LeaseGrant grant{int_field(j, "ID"), int_field(j, "TTL")};
    if (grant.id == 0 || grant.ttl_seconds <= 0)
        throw EtcdError(fmt::format("etcd refused a lease: {}", j.value("error", j.dump())));
    return grant;
}

std::int64_t Client::keepalive(std::int64_t lease_id) {
    // A streaming call in gRPC; through the gateway one request gets one {"result": ...}.
    Json j = Json::parse(post("/v3/lease/keepalive", Json{{"ID", std::to_string(lease_id)}}.dump()));
    if (j.contains("error")) throw EtcdError(fmt::format("etcd keepalive failed: {}", j["error"].dump()));
    return int_field(j.value("result", Json::object()), "TTL");
}

void Client::revoke(std::int64_t lease_id) {
    post("/v3/lease/revoke", Json{{"ID", std::to_string(lease_id)}}.dump());
}

std::optional<KeyValue> Client::get(const std::string& key) {
    Json j = Json::parse(post("/v3/kv/range", Json{{"key", base64_encode(key)}}.dump()));
    auto kvs = j.find("kvs");
    if (kvs == j.end() || kvs->empty()) return std::nullopt;
    return to_key_value(kvs->at(0));
}

std::vector<KeyValue> Client::get_prefix(const std::string& prefix) {
    Json j = Json::parse(post("/v3/kv/range", Json{{"key", base64_encode(prefix)},
                                                   {"range_end", base64_encode(prefix_end(prefix))}}
                                                  .dump()));
    std::vector<KeyValue> out;
    auto kvs = j.find("kvs");
    if (kvs != j.end())
        for (const auto& kv : *kvs) out.push_back(to_key_value(kv));
    return out;
}

void Client::put(const std::string& key, const std::string& value, std::int64_t lease) {
    Json body{{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) body["lease"] = std::to_string(lease);
    post("/v3/kv/put", body.dump());
}

bool Client::txn(const std::vector<Compare>& compares, const std::vector<Write>& on_success) {
    Json compare = Json::array();
    for (const auto& c : compares) {
        Json item{{"key", base64_encode(c.key)}, {"result", "EQUAL"}};
        switch (c.target) {
            case Compare::Target::CreateRevision:
                item["target"] = "CREATE";
                item["create_revision"] = std::to_string(c.revision);
                break;
            case Compare::Target::ModRevision:
                item["target"] = "MOD";
                item["mod_revision"] = std::to_string(c.revision);
                break;
            case Compare::Target::Value:
                item["target"] = "VALUE";
                item["value"] = base64_encode(c.value);
                break;
        }
        compare.push_back(item);
    }
    Json success = Json::array();
    for (const auto& w : on_success) {
        if (w.remove) {
            success.push_back(Json{{"request_delete_range", {{"key", base64_encode(w.key)}}}});
            continue;
        }
        Json put{{"key", base64_encode(w.key)}, {"value", base64_encode(w.value)}};
        if (w.lease != 0) put["lease"] = std::to_string(w.lease);
        success.push_back(Json{{"request_put", put}});
    }
    Json j = Json::parse(post("/v3/kv/txn", Json{{"compare", compare}, {"success", success}}.dump()));
    if (j.contains("error")) throw EtcdError(fmt::format("etcd transaction failed: {}", j["error"].dump()));
    return j.value("succeeded", false);
}

std::vector<Member> Client::members() {
    Json j = Json::parse(post("/v3/cluster/member/list", "{}"));
    std::vector<Member> out;
    for (const auto& m : j.value("members", Json::array())) {
        Member member;
        member.id = unsigned_field(m, "ID");
        member.name = m.value("name", "");
        member.client_urls = m.value("clientURLs", std::vector<std::string>{});
        out.push_back(std::move(member));
    }
    return out;
}

EndpointStatus Client::status(const std::string& endpoint) {
    std::string errors;
    auto answer = post_once(endpoint, "/v3/maintenance/status", "{}", errors);
    if (!answer) throw EtcdError("etcd status: " + errors);
    Json j = Json::parse(*answer);
    return {unsigned_field(j.value("header", Json::object()), "member_id"), unsigned_field(j, "leader")};
}

void Client::move_leader(const std::string& leader_endpoint, std::uint64_t target_id) {
    std::string errors;
    if (!post_once(leader_endpoint, "/v3/maintenance/transfer-leadership",
                   Json{{"targetID", std::to_string(target_id)}}.dump(), errors))
        throw EtcdError("etcd MoveLeader: " + errors);
}

}  // namespace autoctl::etcd
