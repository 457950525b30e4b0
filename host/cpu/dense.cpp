// host/cpu/dense.cpp — dense layers on the CPU (host/cpu/dense.h).
#include "dense.h"

#include <algorithm>

#include "activation.h"
#include "gemm.h"

namespace minicnn::cpu {

void dense_reserve(Workspace<float>& ws, std::int64_t n, std::int64_t n_in, std::int64_t n_out) {
    ws.grow(0, 0, 0, chunk_count(n) * (n_in * n_out + n_out));
}

void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                   std::int64_t n, std::int64_t n_in, std::int64_t n_out, Activation act) {
    parallel_for(chunk_count(n), [&](std::int64_t c, int) {
        const std::int64_t r0 = chunk_begin(n, c), r1 = chunk_begin(n, c + 1);
        float* o = out + r0 * n_out;
        cpu_gemm::sgemm(false, false, r1 - r0, n_out, n_in, 1.0f, inp + r0 * n_in, n_in, weight,
                        n_out, 0.0f, o, n_out);
        cpu_gemm::add_bias(o, bias, r1 - r0, n_out);
        activation_rows(o, o, r1 - r0, n_out, act);
    });
}

void dense_backward(float* dinp, float* dweight, float* dbias, const float* dz, const float* inp,
                    const float* weight, std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                    Workspace<float>& ws) {
    const std::int64_t chunks = chunk_count(n), part = n_in * n_out + n_out;
    dense_reserve(ws, n, n_in, n_out);
    parallel_for(chunks, [&](std::int64_t c, int) {
        const std::int64_t r0 = chunk_begin(n, c), r1 = chunk_begin(n, c + 1);
        const float* dzc = dz + r0 * n_out;
        float* pw = ws.partials.data() + c * part;
        cpu_gemm::sgemm(true, false, n_in, n_out, r1 - r0, 1.0f, inp + r0 * n_in, n_in, dzc, n_out,
                        0.0f, pw, n_out);
        cpu_gemm::column_sums(pw + n_in * n_out, dzc, r1 - r0, n_out, false);
        if (dinp) {
            cpu_gemm::sgemm(false, true, r1 - r0, n_in, n_out, 1.0f, dzc, n_out, weight, n_out,
                            0.0f, dinp + r0 * n_in, n_in);
        }
    });
    reduce_partials(dweight, dbias, ws.partials.data(), chunks, n_in * n_out, n_out);
}

}  // namespace minicnn::cpu
