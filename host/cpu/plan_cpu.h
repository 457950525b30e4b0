// host/cpu/plan_cpu.h — the CPU engine's plan (host/cpu/plan_cpu.cpp), for CpuEngine::plan.
#pragma once

#include <cstdint>
#include <memory>

#include "minicnn/plan.h"
#include "workspace.h"

namespace minicnn::cpu {

// The stages of `model` on the CPU engine `engine`, whose convolution scratch is `ws`.
std::unique_ptr<Plan> plan_cpu(Engine& engine, Workspace<float>& ws, const Sequential& model,
                               std::int64_t max_batch);

}  // namespace minicnn::cpu
