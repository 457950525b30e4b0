// tests/process_util.h — helpers for the tests that run the `minicnn` program as a separate process
// (test_reliability.cpp, test_determinism.cpp): spawning it with fork/exec (optionally under an
// address-space limit), capturing stdout/stderr in files, and writing small IDX data sets (raw or
// gzip, with headers that may lie) into a scratch directory.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace minicnn::test {

using Bytes = std::vector<std::uint8_t>;

inline std::string minicnn_binary() {
    return std::string(MINICNN_BINARY_DIR) + "/minicnn";
}

inline std::string slurp_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

inline void write_file_bytes(const std::string& path, const Bytes& b) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    ASSERT_TRUE(f.good()) << "cannot write " << path;
}

inline bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

inline int line_count(const std::string& s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

// A fresh directory under the test temp dir, unique to this process and `name`.
inline std::string make_scratch_dir(const std::string& name) {
    const std::string d =
        ::testing::TempDir() + "minicnn_" + name + "_" + std::to_string(::getpid());
    ::mkdir(d.c_str(), 0755);
    return d;
}

// A started (or finished) run of the program.
struct Child {
    pid_t pid = -1;
    std::string out_path, err_path;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

// Starts the program argv_s[0] (a path) with its arguments argv_s[1...], stdout/stderr redirected
// to files and stdin from /dev/null. When as_limit_bytes > 0 the child's address space is limited
// to it (RLIMIT_AS) before exec, so an attempt at a huge allocation fails instead of succeeding.
// own_group: the child leads a new process group (pid == group id), so that kill(-pid, ...) ends
// it and everything it starts (mpirun and its ranks).
inline Child spawn_program(std::vector<std::string> argv_s, const std::string& out_path,
                           const std::string& err_path, std::uint64_t as_limit_bytes = 0,
                           bool own_group = false) {
    std::vector<char*> argv;
    for (std::string& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    Child c;
    c.out_path = out_path;
    c.err_path = err_path;
    c.pid = ::fork();
    if (c.pid == 0) {
        // Child: only async-signal-safe calls until exec.
        if (own_group) ::setpgid(0, 0);
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) ::_exit(126);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        // AddressSanitizer reserves terabytes of shadow address space at start-up, so under ASan
        // (the .ci/run sanitizer pass) the limit cannot be set; ASan's own allocator then reports
        // a huge request instead, and the plain build keeps the limit.
        if (as_limit_bytes > 0 && !kUnderAddressSanitizer) {
            struct rlimit rl;
            rl.rlim_cur = rl.rlim_max = as_limit_bytes;
            if (::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(125);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return c;
}

// Starts `minicnn args...` (spawn_program).
inline Child spawn_minicnn(const std::vector<std::string>& args, const std::string& out_path,
                           const std::string& err_path, std::uint64_t as_limit_bytes = 0) {
    std::vector<std::string> argv{minicnn_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return spawn_program(argv, out_path, err_path, as_limit_bytes);
}

struct Result {
    int exit_code = -1;  // -1 when killed by a signal
    int signal = 0;
    std::string out, err;
};

// The result of child c, which ended with wait status `status`.
inline Result result_of(const Child& c, int status) {
    Result r;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.out = slurp_file(c.out_path);
    r.err = slurp_file(c.err_path);
    return r;
}

inline Result wait_child(const Child& c) {
    int status = 0;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    return result_of(c, status);
}

// wait_child for at most limit_s seconds; past it, the child's process group is killed (it must
// lead one: spawn_program's own_group), the test fails saying the run hung, and the result is
// that of the killed child.
inline Result wait_child_for(const Child& c, double limit_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        const pid_t done = ::waitpid(c.pid, &status, WNOHANG);
        if (done == c.pid) return result_of(c, status);
        if (done < 0 && errno != EINTR) break;
        ::usleep(20000);
    }
    ::kill(-c.pid, SIGKILL);
    ADD_FAILURE() << "the run did not end within " << limit_s << " s (a hang)";
    return wait_child(c);
}

// Runs `minicnn args...` to completion.
inline Result run_minicnn(const std::string& scratch, const std::vector<std::string>& args,
                          std::uint64_t as_limit_bytes = 0) {
    return wait_child(
        spawn_minicnn(args, scratch + "/stdout", scratch + "/stderr", as_limit_bytes));
}

inline std::string join_args(const std::vector<std::string>& args) {
    std::string s = "minicnn";
    for (const std::string& a : args) s += " " + a;
    return s;
}

// ---- IDX files ----------------------------------------------------------------------------------

inline void put_be32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(std::uint8_t(v >> s));
}

// An idx3 image file of `n` images rows x cols whose header announces `header_count` images
// (n when negative). Class c (labels from the same seed, see idx_labels) is a bright 7x7 square
// at one of ten places plus noise (for 28x28 images), so training on it learns.
inline Bytes idx_images(int n, int rows, int cols, unsigned seed, std::int64_t header_count = -1,
                        std::uint32_t magic = 0x00000803) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, std::uint32_t(header_count < 0 ? n : header_count));
    put_be32(b, std::uint32_t(rows));
    put_be32(b, std::uint32_t(cols));
    std::mt19937 g(seed);
    for (int i = 0; i < n; ++i) {
        const int c = int(g() % 10);
        const int r0 = 2 + (c / 5) * 13, c0 = 1 + (c % 5) * 5;
        for (int r = 0; r < rows; ++r)
            for (int q = 0; q < cols; ++q) {
                int v = int(g() % 60);
                if (r >= r0 && r < r0 + 7 && q >= c0 && q < c0 + 7) v += 180;
                b.push_back(std::uint8_t(v));
            }
    }
    return b;
}

// The labels matching idx_images(n, 28, 28, seed): the classes drawn from the same generator.
inline Bytes idx_labels(int n, unsigned seed, std::int64_t header_count = -1,
                        std::uint32_t magic = 0x00000801) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, std::uint32_t(header_count < 0 ? n : header_count));
    std::mt19937 g(seed);
    for (int i = 0; i < n; ++i) {
        b.push_back(std::uint8_t(g() % 10));
        for (int k = 0; k < 28 * 28; ++k) (void)g();  // the pixels' draws
    }
    return b;
}

inline Bytes gzip_bytes(const Bytes& raw) {
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    Bytes out(deflateBound(&zs, uLong(raw.size())) + 64);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = uInt(raw.size());
    zs.next_out = out.data();
    zs.avail_out = uInt(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

// Writes a good raw data set: <dir>/train-* with n_train images and <dir>/t10k-* with n_test.
inline void write_idx_dataset(const std::string& dir, int n_train, int n_test, unsigned seed) {
    ::mkdir(dir.c_str(), 0755);
    write_file_bytes(dir + "/train-images-idx3-ubyte", idx_images(n_train, 28, 28, seed));
    write_file_bytes(dir + "/train-labels-idx1-ubyte", idx_labels(n_train, seed));
    write_file_bytes(dir + "/t10k-images-idx3-ubyte", idx_images(n_test, 28, 28, seed + 1));
    write_file_bytes(dir + "/t10k-labels-idx1-ubyte", idx_labels(n_test, seed + 1));
}

}  // namespace minicnn::test
