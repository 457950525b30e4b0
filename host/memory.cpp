// host/memory.cpp — host memory available to the process and its peak use (minicnn/memory.h).
#include "minicnn/memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace minicnn {

namespace {

constexpr std::size_t kUnknown = std::numeric_limits<std::size_t>::max();

// "MemAvailable:  123456 kB" in /proc/meminfo, in bytes.
std::size_t meminfo_available() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    unsigned long long kb = 0;
    std::string unit;
    while (f >> key >> kb) {
        std::getline(f, unit);
        if (key == "MemAvailable:") return std::size_t(kb) * 1024;
    }
    return kUnknown;
}

// The soft address-space limit less the address space this process has mapped.
std::size_t address_space_left() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return kUnknown;
    std::ifstream f("/proc/self/statm");
    unsigned long long pages = 0;
    if (!(f >> pages)) return kUnknown;
    const unsigned long long mapped =
        pages * static_cast<unsigned long long>(::sysconf(_SC_PAGESIZE));
    return mapped >= lim.rlim_cur ? 0 : std::size_t(lim.rlim_cur - mapped);
}

// cgroup v2: memory.max less memory.current of this process's cgroup ("max": no limit).
std::size_t cgroup_left() {
    std::ifstream cg("/proc/self/cgroup");
    std::string line, path;
    while (std::getline(cg, line))
        if (line.rfind("0::", 0) == 0) path = line.substr(3);
    if (path.empty()) return kUnknown;
    const std::string dir = "/sys/fs/cgroup" + path;
    std::ifstream fmax(dir + "/memory.max"), fcur(dir + "/memory.current");
    std::string max_s;
    unsigned long long cur = 0;
    if (!(fmax >> max_s) || max_s == "max" || !(fcur >> cur)) return kUnknown;
    unsigned long long max = 0;
    if (!(std::istringstream(max_s) >> max)) return kUnknown;
    return cur >= max ? 0 : std::size_t(max - cur);
}

}  // namespace

std::size_t host_memory_available() {
    return std::min({meminfo_available(), address_space_left(), cgroup_left()});
}

std::size_t peak_host_memory() {
    rusage u{};
    if (::getrusage(RUSAGE_SELF, &u) != 0) return 0;
    return std::size_t(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

}  // namespace minicnn
