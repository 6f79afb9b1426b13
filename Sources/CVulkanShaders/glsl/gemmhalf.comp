#version 460
// The batched product with a float16 B: a linear layer's weight stored at half the bytes
// (gemm.glsl; the device must have 16-bit storage buffers).
#define B_HALF
#include "gemm.glsl"
