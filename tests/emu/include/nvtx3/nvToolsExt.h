// tests/emu/include/nvtx3/nvToolsExt.h — NVTX ranges as no-ops, for tests/emu/run.sh.
#pragma once
inline int nvtxRangePushA(const char*) {
    return 0;
}
inline int nvtxRangePop() {
    return 0;
}
