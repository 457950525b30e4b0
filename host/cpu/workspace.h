// host/cpu/workspace.h — scratch memory of the CPU backend's convolution and dense layers: per pool
// worker an im2col matrix (or the direct convolution's packed filter gradient), its gradient and one
// padded image; the batch chunks' partial weight gradients; the direct convolution's packed
// weights. It only grows. The training engine keeps one for the whole run (reserved before the first
// step); a functional-API call makes its own.
#pragma once

#include <cstdint>
#include <vector>

#include "thread_pool.h"

namespace minicnn::cpu {

template <class T>
struct Workspace {
    struct Worker {
        std::vector<T> cols;   // im2col matrix (either layout)
        std::vector<T> dcols;  // its gradient, or the transposed forward output
        std::vector<T> pad;    // one zero-padded image
    };
    std::vector<Worker> workers;  // one per pool thread
    std::vector<T> partials;      // (chunks, weight + bias) partial gradients
    std::vector<T> packed;        // the direct convolution's packed weights (host/cpu/conv_direct.h)

    // At least this much for every worker and for the partials.
    void grow(std::int64_t cols, std::int64_t dcols, std::int64_t pad, std::int64_t partial,
              std::int64_t packed_weights = 0) {
        if (workers.size() < std::size_t(thread_count()))
            workers.resize(std::size_t(thread_count()));
        for (Worker& w : workers) {
            if (std::int64_t(w.cols.size()) < cols) w.cols.resize(std::size_t(cols));
            if (std::int64_t(w.dcols.size()) < dcols) w.dcols.resize(std::size_t(dcols));
            if (std::int64_t(w.pad.size()) < pad) w.pad.resize(std::size_t(pad));
        }
        if (std::int64_t(partials.size()) < partial) partials.resize(std::size_t(partial));
        if (std::int64_t(packed.size()) < packed_weights) packed.resize(std::size_t(packed_weights));
    }
};

// dweight (wn) and dbias (bn, may be null) = the sum of `chunks` partials of (wn + bn) values,
// chunk 0 first (a fixed order: deterministic).
template <class T>
void reduce_partials(T* dweight, T* dbias, const T* partials, std::int64_t chunks, std::int64_t wn,
                     std::int64_t bn);

}  // namespace minicnn::cpu
