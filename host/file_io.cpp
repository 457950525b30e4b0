// host/file_io.cpp — whole-file reads and atomic writes (host/file_io.h).
#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "minicnn/error.h"

namespace minicnn {
namespace {

struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes,
                       const std::string& who, const std::string& kind) {
    MINICNN_REQUIRE(!path.empty(), who << ": empty path");
    const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
    const std::string unchanged = "; the previous " + kind + ", if any, is unchanged";

    std::FILE* f = nullptr;
    auto fail = [&](const char* step) {
        const int e = errno;
        if (f) std::fclose(f);
        ::unlink(tmp.c_str());
        std::ostringstream os;
        os << who << ": cannot write '" << path << "': " << step << " '" << tmp
           << "' failed: " << std::strerror(e) << unchanged;
        throw ArgumentError(os.str());
    };
    f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
        // Nothing was created; do not unlink a path we did not make.
        const int e = errno;
        std::ostringstream os;
        os << who << ": cannot write '" << path << "': creating the temporary file '" << tmp
           << "' failed: " << std::strerror(e) << unchanged;
        throw ArgumentError(os.str());
    }
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
        fail("writing");
    if (std::fflush(f) != 0) fail("flushing");
    if (::fsync(::fileno(f)) != 0) fail("fsync of");
    const int rc = std::fclose(f);
    f = nullptr;
    if (rc != 0) fail("closing");
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming over the target");

    // Make the rename itself durable. Filesystems without directory fsync answer EINVAL.
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        const int src = ::fsync(dfd);
        const int e = errno;
        ::close(dfd);
        MINICNN_REQUIRE(src == 0 || e == EINVAL,
                        who << ": '" << path << "' was written, but the fsync of its "
                            << "directory '" << dir << "' failed: " << std::strerror(e));
    }
}

std::vector<std::uint8_t> read_file(const std::string& path, const std::string& what) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        const int e = errno;
        MINICNN_REQUIRE(e != ENOENT, what << " '" << path << "' not found");
        MINICNN_REQUIRE(false,
                        what << " '" << path << "' cannot be accessed: " << std::strerror(e));
    }
    MINICNN_REQUIRE(S_ISREG(st.st_mode), what << " '" << path << "' is not a regular file");
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    MINICNN_REQUIRE(f, what << " '" << path << "' cannot be opened: " << std::strerror(errno));
    // Read until EOF: the buffer only holds bytes the file really has.
    std::vector<std::uint8_t> data;
    data.reserve(static_cast<std::size_t>(st.st_size));
    std::uint8_t chunk[1 << 16];
    std::size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, f.get())) > 0)
        data.insert(data.end(), chunk, chunk + n);
    MINICNN_REQUIRE(!std::ferror(f.get()),
                    what << " '" << path << "': read error: " << std::strerror(errno));
    return data;
}

}  // namespace minicnn
