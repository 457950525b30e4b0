// host/cpu/thread_pool.h — the CPU backend's one threading model: a process-wide pool of worker threads
// and the fixed work splits every CPU operation uses (functional API and training engine alike).
//
// Determinism: work is split by a function of the problem size only (chunk_count, parallel_range's
// blocks), never of the thread count, and each index is computed in a fixed order by whichever
// thread claims it; so results are bit-identical for any number of threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

#include "minicnn/cpu_backend.h"  // thread_count, set_thread_count

namespace minicnn::cpu {

// Calls fn(i, worker) for every i in [0, n), worker in [0, thread_count()), on the shared pool, and
// returns when every call has returned. A call made while the pool is busy (from another thread, or
// from inside fn) runs its indices on the calling thread, as worker 0 of its own.
// Exceptions thrown by fn are rethrown here (the first one), after every index has run.
void parallel_for(std::int64_t n, const std::function<void(std::int64_t, int)>& fn);

// fn(begin, end) over fixed blocks of [0, n) (element-wise loops): about 16 Ki elements per block,
// at most 64 blocks.
template <class F>
void parallel_range(std::int64_t n, F&& fn) {
    if (n <= 0) return;
    const std::int64_t blocks = std::clamp<std::int64_t>(n / 16384, 1, 64);
    parallel_for(blocks, [&](std::int64_t b, int) { fn(n * b / blocks, n * (b + 1) / blocks); });
}

// Batch chunks: a batch of n images is cut into chunk_count(n) chunks (at least 16 images each, at
// most 8 chunks), a function of n only. Chunk c holds images [chunk_begin(n, c), chunk_begin(n, c + 1)).
constexpr std::int64_t kMaxChunks = 8;
constexpr std::int64_t kMinChunkImages = 16;
inline std::int64_t chunk_count(std::int64_t n) {
    return std::clamp<std::int64_t>((n + kMinChunkImages - 1) / kMinChunkImages, 1, kMaxChunks);
}
inline std::int64_t chunk_begin(std::int64_t n, std::int64_t c) {
    return n * c / chunk_count(n);
}
// The largest chunk of any batch size up to n.
std::int64_t max_chunk_images(std::int64_t n);

}  // namespace minicnn::cpu
