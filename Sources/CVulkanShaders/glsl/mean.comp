#version 460
// src [outer, size, inner] -> dst [outer, inner], the mean along the middle axis.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    uint outer, size, inner;
} p;

void main() {
    GRID_STRIDE(i, p.outer * p.inner) {
        uint o = i / p.inner, j = i % p.inner;
        float sum = 0.0;
        for (uint s = 0; s < p.size; s++) sum += p.src.v[(o * p.size + s) * p.inner + j];
        p.dst.v[i] = sum / float(p.size);
    }
}
