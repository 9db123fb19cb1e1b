#include "support/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace autofailover::support {
namespace {

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

std::string parent_dir(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& content, unsigned mode) {
    // A name of its own (mkstemp, created 0600): two writers never share a temp file, and
    // the content is never readable by others before the mode is set.
    std::string temp = path + ".tmp.XXXXXX";
    {
        Fd fd(::mkostemp(temp.data(), O_CLOEXEC));
        if (fd.get() < 0) fail("cannot create", temp);
        if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
            ::unlink(temp.c_str());
            fail("cannot chmod", temp);
        }
        const char* data = content.data();
        std::size_t left = content.size();
        while (left > 0) {
            ssize_t n = ::write(fd.get(), data, left);
            if (n < 0) {
                if (errno == EINTR) continue;
                const int saved = errno;
                ::unlink(temp.c_str());
                errno = saved;
                fail("cannot write", temp);
            }
            data += n;
            left -= static_cast<std::size_t>(n);
        }
        if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
            const int saved = errno;
            ::unlink(temp.c_str());
            errno = saved;
            fail("cannot fsync", temp);
        }
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(temp.c_str());
        errno = saved;
        fail("cannot rename onto", path);
    }
    // The rename itself is durable only once the directory is synced.
    Fd dir(::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) fail("cannot open directory of", path);
    if (::fsync(dir.get()) != 0) fail("cannot fsync directory of", path);
}

void fsync_directory(const std::string& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) fail("cannot open directory", dir);
    if (::fsync(fd.get()) != 0) fail("cannot fsync directory", dir);
}

void sync_data_directory(const std::string& pgdata) {
    namespace fs = std::filesystem;
    std::vector<std::string> roots = {pgdata};
    std::error_code ec;
    if (fs::is_symlink(pgdata + "/pg_wal", ec)) roots.push_back(pgdata + "/pg_wal/");
    for (const auto& link : fs::directory_iterator(pgdata + "/pg_tblspc", ec)) roots.push_back(link.path().string() + "/");
    std::set<dev_t> done;
    for (const auto& root : roots) {
        Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (fd.get() < 0) fail("cannot open", root);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) fail("cannot stat", root);
        if (!done.insert(st.st_dev).second) continue;
        if (::syncfs(fd.get()) != 0) fail("cannot syncfs the file system of", root);
    }
}

std::optional<std::string> read_file_if_exists(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::nullopt;
        fail("cannot read", path);
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace autofailover::support
