#version 460
// SAM's LayerNorm2d on [N, C, H, W]: each pixel normalized over its channels, one thread a
// pixel (neighbouring threads read neighbouring pixels of a channel plane).
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats weight;
    Floats bias;
    Floats dst;
    uint N;
    uint C;
    uint HW;
    float eps;
} p;

void main() {
    GRID_STRIDE(i, p.N * p.HW) {
        uint n = i / p.HW, pixel = i % p.HW, base = n * p.C * p.HW + pixel;
        float sum = 0.0;
        for (uint c = 0; c < p.C; c++) sum += p.src.v[base + c * p.HW];
        float mean = sum / float(p.C);
        float squares = 0.0;
        for (uint c = 0; c < p.C; c++) { float d = p.src.v[base + c * p.HW] - mean; squares += d * d; }
        float rstd = inversesqrt(squares / float(p.C) + p.eps);
        for (uint c = 0; c < p.C; c++) {
            p.dst.v[base + c * p.HW] = (p.src.v[base + c * p.HW] - mean) * rstd * p.weight.v[c] + p.bias.v[c];
        }
    }
}
