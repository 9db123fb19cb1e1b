#include "autoctl/metrics_exporter.h"

#include "autoctl/exit_codes.h"
#include "autoctl/metrics_text.h"
#include "autoctl/monitor_client.h"
#include "autoctl/stop_signals.h"

#include <httplib.h>
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace autoctl {
namespace {

// One monitor connection shared by the scrapes, opened on demand and dropped on error.
class MetricsSource {
public:
    MetricsSource(std::string uri, std::string formation) : uri_(std::move(uri)), formation_(std::move(formation)) {}

    // The exposition text, or nullopt when the monitor cannot be asked (logged on stderr).
    std::optional<std::string> scrape() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto started = std::chrono::steady_clock::now();
        try {
            if (!monitor_) monitor_ = std::make_unique<MonitorClient>(uri_);
            std::string text = render_prometheus(monitor_->metrics(formation_));
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            text += "# HELP autofailover_exporter_scrape_duration_seconds Time this scrape spent asking the monitor.\n"
                    "# TYPE autofailover_exporter_scrape_duration_seconds gauge\n";
            text += fmt::format("autofailover_exporter_scrape_duration_seconds {:.6f}\n", seconds);
            return text;
        } catch (const CliError& e) {
            monitor_.reset();
            std::cerr << fmt::format("autoctl: level=warning exporter scrape failed, monitor {}: {}\n",
                                     redact_uri(uri_), e.what());
            return std::nullopt;
        }
    }

private:
    std::mutex mutex_;
    std::string uri_;
    std::string formation_;
    std::unique_ptr<MonitorClient> monitor_;
};

}  // namespace

void serve_metrics(const std::string& monitor_uri, const std::string& formation, const ExporterOptions& o) {
    MetricsSource source(monitor_uri, formation);
    httplib::Server server;
    server.new_task_queue = [threads = o.threads] {
        return std::make_unique<httplib::ThreadPool>(static_cast<size_t>(threads)).release();
    };
    const auto io = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::duration<double>(o.io_timeout_seconds));
    server.set_read_timeout(io.count() / 1000000, io.count() % 1000000);
    server.set_write_timeout(io.count() / 1000000, io.count() % 1000000);
    server.set_payload_max_length(1024);
    server.Get("/metrics", [&source](const httplib::Request&, httplib::Response& res) {
        if (auto text = source.scrape()) {
            res.set_content(*text, "text/plain; version=0.0.4");
        } else {
            res.status = 503;
            res.set_content("monitor unavailable (see the exporter's log)\n", "text/plain");
        }
    });
    if (!server.bind_to_port(o.listen.c_str(), o.port))
        throw CliError(ExitCode::BadArguments, fmt::format("cannot listen for HTTP on {}:{}", o.listen, o.port));

    StopSignals stop;
    std::thread listener([&server] { server.listen_after_bind(); });
    std::cerr << fmt::format("autoctl: level=info serving the monitor's metrics on http://{}:{}/metrics\n", o.listen,
                             o.port);
    while (!stop.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
    listener.join();
}

}  // namespace autoctl
