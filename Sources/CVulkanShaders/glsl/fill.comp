#version 460
// dst[0..<count] = value.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats dst;
    uint count;
    float value;
} p;

void main() {
    GRID_STRIDE(i, p.count) { p.dst.v[i] = p.value; }
}
