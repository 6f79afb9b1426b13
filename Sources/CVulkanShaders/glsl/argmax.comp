#version 460
// The index of each contiguous row's largest value: the first on ties, a NaN above any
// number (torch's argmax, as the CPU backend has it).
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Uints dst;
    uint rows, width;
} p;

void main() {
    GRID_STRIDE(row, p.rows) {
        uint base = row * p.width, best = 0;
        for (uint i = 1; i < p.width; i++) {
            float value = p.src.v[base + i], top = p.src.v[base + best];
            if (value > top || (isnan(value) && !isnan(top))) best = i;
        }
        p.dst.v[row] = best;
    }
}
