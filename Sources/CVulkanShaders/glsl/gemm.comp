#version 460
// The batched product on float32 operands (gemm.glsl).
#include "gemm.glsl"
