// host/cpu/simd_clones.h — MINICNN_CLONES: the CPU backend's hot loops are compiled twice, for AVX2 and
// for the baseline, and the loader picks one for the machine (GCC on x86-64; elsewhere one version).
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MINICNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MINICNN_CLONES
#endif
