// MonitorLink against a multi-host monitor URI whose first host swallows the connection (a crashed monitor
// machine drops packets; libpq's connect_timeout does not bound PQconnectPoll): the next call must start from
// the next host (commit bfd0f8e, netns row M3). Real sockets on loopback; no Postgres needed, since only which
// host each attempt reaches is checked.
#include "keeper/monitor_link.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using autofailover::keeper::MonitorLink;
using autofailover::keeper::MonitorLogin;
using autofailover::keeper::MonitorUnreachable;

namespace {

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// A socket listening on 127.0.0.1:port with this accept backlog.
int listen_on_loopback(int port, int backlog) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket");
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
        ::close(fd);
        throw std::runtime_error("bind/listen on 127.0.0.1:" + std::to_string(port));
    }
    return fd;
}

// A listening socket nobody serves: the kernel completes the TCP handshake, then libpq waits for an answer
// to its startup packet for ever, like a host that vanished after the handshake.
class SilentListener {
public:
    explicit SilentListener(int port) : port_(port), fd_(listen_on_loopback(port, 16)) {
        ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    }
    ~SilentListener() {
        for (int c : accepted_) ::close(c);
        ::close(fd_);
    }
    SilentListener(const SilentListener&) = delete;
    SilentListener& operator=(const SilentListener&) = delete;

    // Connections that arrived since the last look (kept open and unanswered).
    int take_new_connections() {
        int n = 0;
        for (;;) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return n;
            accepted_.push_back(c);
            ++n;
        }
    }
    int port() const { return port_; }

private:
    int port_;
    int fd_ = -1;
    std::vector<int> accepted_;
};

void call_once(MonitorLink& link) {
    try {
        link.get_other_nodes(1);
        FAIL("a silent monitor answered");
    } catch (const MonitorUnreachable&) {
    }
}

}  // namespace

TEST_CASE("after a failed connection the keeper starts from the next host of a multi-host monitor URI",
          "[monitor-link]") {
    // Ports from this test's own range (docs: listening ports < 32768).
    SilentListener first(7481), second(7482);
    MonitorLogin login;
    login.uri = "postgresql://autofailover_keeper@127.0.0.1:" + std::to_string(first.port()) + ",127.0.0.1:" +
                std::to_string(second.port()) + "/autofailover?sslmode=disable&connect_timeout=2";
    MonitorLink link(login, std::chrono::milliseconds(300));

    const auto started = std::chrono::steady_clock::now();
    call_once(link);  // hangs on the first host until the call's deadline
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    CHECK(first.take_new_connections() == 1);
    CHECK(second.take_new_connections() == 0);

    call_once(link);  // must not go back to the silent first host
    CHECK(first.take_new_connections() == 0);
    CHECK(second.take_new_connections() == 1);

    call_once(link);  // and round the list again
    CHECK(first.take_new_connections() == 1);
    CHECK(second.take_new_connections() == 0);
}

TEST_CASE("a single-host monitor URI is retried on its one host", "[monitor-link]") {
    SilentListener only(7483);
    MonitorLogin login;
    login.uri = "postgresql://autofailover_keeper@127.0.0.1:" + std::to_string(only.port()) +
                "/autofailover?sslmode=disable";
    MonitorLink link(login, std::chrono::milliseconds(200));
    call_once(link);
    call_once(link);
    CHECK(only.take_new_connections() == 2);
}

TEST_CASE("a monitor host that never answers the TCP handshake costs one call timeout, not TCP's",
          "[monitor-link]") {
    // A listener whose accept queue is full drops every new SYN, as a crashed or cut-off host does: the
    // connection stays in progress. libpq must not be asked to send on it before it is made (netns row M6).
    const int port = 7484;
    const int fd = listen_on_loopback(port, 0);
    sockaddr_in a = loopback(port);
    std::vector<int> fillers;  // never accepted: they fill the queue
    for (int i = 0; i < 3; ++i) {
        const int c = ::socket(AF_INET, SOCK_STREAM, 0);
        ::fcntl(c, F_SETFL, O_NONBLOCK);
        ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(c);
    }
    ::usleep(100 * 1000);

    // A signal during the wait (the keeper's SIGHUP from `autoctl enable monitor`) must not end it early either.
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    struct sigaction old {};
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);  // no SA_RESTART: poll() returns EINTR
    const pthread_t caller = ::pthread_self();
    std::thread signaller([caller] {
        for (int i = 0; i < 6; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(70));
            ::pthread_kill(caller, SIGUSR1);
        }
    });

    MonitorLogin login;
    login.uri = "postgresql://autofailover_keeper@127.0.0.1:" + std::to_string(port) + "/autofailover?sslmode=disable";
    MonitorLink link(login, std::chrono::milliseconds(300));
    for (int i = 0; i < 2; ++i) {
        const auto started = std::chrono::steady_clock::now();
        call_once(link);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    }
    signaller.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    for (int c : fillers) ::close(c);
    ::close(fd);
}
