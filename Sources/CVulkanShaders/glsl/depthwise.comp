#version 460
// Depthwise convolution (one filter per channel, weight [C, 1, kh, kw]) with bias and
// activation, on [N, C, H, W] or (FLAG_CHANNELS_LAST) [N, H, W, C]; one thread an output.
#include "common.glsl"
layout(local_size_x = 256) in;

const uint FLAG_BIAS = 1u, FLAG_CHANNELS_LAST = 2u;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats weight;
    Floats bias;
    Floats dst;
    uint N, C, H, W;
    uint kh, kw;
    int strideY, strideX, padY, padX, dilationY, dilationX;
    uint OH, OW;
    uint flags;  // FLAG_*, activation << 8
} p;

void main() {
    bool last = (p.flags & FLAG_CHANNELS_LAST) != 0u;
    GRID_STRIDE(i, p.N * p.C * p.OH * p.OW) {
        uint c, ox, oy, n;
        if (last) {
            c = i % p.C; ox = (i / p.C) % p.OW; oy = (i / (p.C * p.OW)) % p.OH; n = i / (p.C * p.OW * p.OH);
        } else {
            ox = i % p.OW; oy = (i / p.OW) % p.OH; c = (i / (p.OW * p.OH)) % p.C; n = i / (p.OW * p.OH * p.C);
        }
        float sum = 0.0;
        for (uint ky = 0; ky < p.kh; ky++) {
            int iy = int(oy) * p.strideY - p.padY + int(ky) * p.dilationY;
            if (iy < 0 || iy >= int(p.H)) continue;
            for (uint kx = 0; kx < p.kw; kx++) {
                int ix = int(ox) * p.strideX - p.padX + int(kx) * p.dilationX;
                if (ix < 0 || ix >= int(p.W)) continue;
                uint source = last ? ((n * p.H + uint(iy)) * p.W + uint(ix)) * p.C + c
                                   : ((n * p.C + c) * p.H + uint(iy)) * p.W + uint(ix);
                sum = fma(p.src.v[source], p.weight.v[(c * p.kh + ky) * p.kw + kx], sum);
            }
        }
        if ((p.flags & FLAG_BIAS) != 0u) sum += p.bias.v[c];
        p.dst.v[i] = activate(sum, p.flags >> 8);
    }
}
