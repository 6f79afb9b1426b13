#version 460
// dst = activate(src * scale + shift) over contiguous tensors (affine alone with ACT_NONE).
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    uint count;
    uint activation;
    float scale;
    float shift;
} p;

void main() {
    GRID_STRIDE(i, p.count) { p.dst.v[i] = activate(p.src.v[i] * p.scale + p.shift, p.activation); }
}
