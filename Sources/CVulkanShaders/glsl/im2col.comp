#version 460
// The columns of a convolution: cols[n, (c, ky, kx), (oy, ox)] = x[n, c, iy, ix] (0 outside),
// so that the convolution is a product with the [out, in * kh * kw] weight.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    uint N, C, H, W;
    uint kh, kw;
    int strideY, strideX, padY, padX, dilationY, dilationX;
    uint OH, OW;
} p;

void main() {
    uint positions = p.OH * p.OW, rows = p.C * p.kh * p.kw;
    GRID_STRIDE(i, p.N * rows * positions) {
        uint position = i % positions, row = (i / positions) % rows, n = i / (positions * rows);
        uint kx = row % p.kw, ky = (row / p.kw) % p.kh, c = row / (p.kw * p.kh);
        int iy = int(position / p.OW) * p.strideY - p.padY + int(ky) * p.dilationY;
        int ix = int(position % p.OW) * p.strideX - p.padX + int(kx) * p.dilationX;
        bool inside = iy >= 0 && ix >= 0 && iy < int(p.H) && ix < int(p.W);
        p.dst.v[i] = inside ? p.src.v[((n * p.C + c) * p.H + uint(iy)) * p.W + uint(ix)] : 0.0;
    }
}
