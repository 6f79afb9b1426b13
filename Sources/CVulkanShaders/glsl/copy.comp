#version 460
// dst[i] = src[i] over a strided view of rank <= 6 (shapes padded with 1s at the front):
// contiguous(), and with strided destinations concat, pad and the window layouts.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    uint count;
    uint shape[6];
    int srcStrides[6];
    int dstStrides[6];
} p;

void main() {
    GRID_STRIDE(i, p.count) {
        uint rest = i;
        int s = 0, d = 0;
        for (int axis = 5; axis >= 0; axis--) {
            uint index = rest % p.shape[axis];
            rest /= p.shape[axis];
            s += int(index) * p.srcStrides[axis];
            d += int(index) * p.dstStrides[axis];
        }
        p.dst.v[d] = p.src.v[s];
    }
}
