#version 460
// dst[i] = src[i] as float16 (round to nearest even): a linear layer's weight stored at half
// the bytes (VulkanBackend.linearWeight with float16 weights).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "common.glsl"
layout(local_size_x = 256) in;

layout(buffer_reference, scalar, buffer_reference_align = 2) buffer Halfs { float16_t v[]; };

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Halfs dst;
    uint count;
} p;

void main() {
    GRID_STRIDE(i, p.count) {
        p.dst.v[i] = float16_t(p.src.v[i]);
    }
}
