// Read-only HTTP health endpoint of the keeper (--http-port, docs/operations.md):
// load balancers and probes ask it which role this node serves. It answers from
// the last NodeObservation the loop published, never from Postgres or the monitor.
#pragma once

#include "keeper/node_observation.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace autofailover::keeper {

class HttpEndpoint {
public:
    // Binds at once (throws std::runtime_error when it cannot) and serves on a
    // thread pool of `threads` workers until destroyed.
    HttpEndpoint(const std::string& host, int port, int threads, std::chrono::milliseconds io_timeout,
                 std::chrono::milliseconds liveness_bound);
    ~HttpEndpoint();
    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    void publish(const NodeObservation& o);

private:
    NodeObservation snapshot() const;
    std::string state_json(const NodeObservation& o, TimePoint now) const;
    std::string metrics_text(const NodeObservation& o, TimePoint now) const;

    std::chrono::milliseconds liveness_bound_;
    mutable std::mutex mutex_;
    NodeObservation last_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
};

}  // namespace autofailover::keeper
