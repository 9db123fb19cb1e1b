// `autoctl show metrics --http-port N`: the monitor's metrics served over HTTP for
// Prometheus (GET /metrics), one autofailover.metrics() query per scrape.
#pragma once

#include <string>

namespace autoctl {

struct ExporterOptions {
    std::string listen = "127.0.0.1";  // loopback unless the operator opens it
    int port = 0;
    int threads = 2;                // bounded: scrapes are serialized on one monitor connection anyway
    double io_timeout_seconds = 5;  // per socket read/write; a stalled scraper cannot hold a thread longer
};

// Serves until SIGINT or SIGTERM, then returns (exit 0). A monitor that cannot be
// reached answers 503 for that scrape and is reconnected at the next one.
void serve_metrics(const std::string& monitor_uri, const std::string& formation, const ExporterOptions& options);

}  // namespace autoctl
