#version 460
// One axis of a separable interpolation: src [outer, L, inner] -> dst [outer, OL, inner],
// output position o reading the T inputs taps.indices[o T + t] with weights taps.weights
// (the CPU backend's InterpolationTaps, uploaded). Summed from 0 in tap order, as on the CPU.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    Uints indices;
    Floats weights;
    uint outer, L, OL, inner, T;
} p;

void main() {
    GRID_STRIDE(i, p.outer * p.OL * p.inner) {
        uint j = i % p.inner, o = (i / p.inner) % p.OL, n = i / (p.inner * p.OL);
        float sum = 0.0;
        for (uint t = 0; t < p.T; t++) {
            sum += p.weights.v[o * p.T + t] * p.src.v[(n * p.L + p.indices.v[o * p.T + t]) * p.inner + j];
        }
        p.dst.v[i] = sum;
    }
}
