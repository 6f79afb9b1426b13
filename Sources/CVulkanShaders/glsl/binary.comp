#version 460
// out = a op b with broadcasting: a and b are strided views of out's shape (stride 0 where
// broadcast); out is contiguous.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats a;
    Floats b;
    Floats dst;
    uint count;
    uint operation;  // 0 add, 1 subtract, 2 multiply, 3 divide
    uint shape[6];
    int aStrides[6];
    int bStrides[6];
} p;

void main() {
    GRID_STRIDE(i, p.count) {
        uint rest = i;
        int ia = 0, ib = 0;
        for (int axis = 5; axis >= 0; axis--) {
            uint index = rest % p.shape[axis];
            rest /= p.shape[axis];
            ia += int(index) * p.aStrides[axis];
            ib += int(index) * p.bStrides[axis];
        }
        float x = p.a.v[ia], y = p.b.v[ib];
        float result;
        switch (p.operation) {
        case 0: result = x + y; break;
        case 1: result = x - y; break;
        case 2: result = x * y; break;
        default: result = x / y; break;
        }
        p.dst.v[i] = result;
    }
}
