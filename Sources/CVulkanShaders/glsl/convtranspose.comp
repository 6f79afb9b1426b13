#version 460
// ConvTranspose2d with kernel == stride (SAM's upscaling): every output pixel comes from one
// input pixel, out[n, o, y k + ky, x k + kx] = bias[o] + sum_i x[n, i, y, x] w[i, o, ky, kx].
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats weight;
    Floats bias;
    Floats dst;
    uint N, IC, OC, H, W, k;
    uint hasBias;
} p;

void main() {
    uint OH = p.H * p.k, OW = p.W * p.k;
    GRID_STRIDE(i, p.N * p.OC * OH * OW) {
        uint ox = i % OW, oy = (i / OW) % OH, o = (i / (OW * OH)) % p.OC, n = i / (OW * OH * p.OC);
        uint y = oy / p.k, ky = oy % p.k, x = ox / p.k, kx = ox % p.k;
        float sum = 0.0;
        for (uint c = 0; c < p.IC; c++) {
            sum = fma(p.src.v[((n * p.IC + c) * p.H + y) * p.W + x], p.weight.v[((c * p.OC + o) * p.k + ky) * p.k + kx], sum);
        }
        p.dst.v[i] = sum + (p.hasBias != 0u ? p.bias.v[o] : 0.0);
    }
}
