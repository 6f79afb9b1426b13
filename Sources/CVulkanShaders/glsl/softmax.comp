#version 460
// Softmax along each contiguous row of `width` values, one workgroup a row.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    uint rows;
    uint width;
} p;

shared float partial[256];

float reduce(float value, bool maximum) {
    uint t = gl_LocalInvocationID.x;
    partial[t] = value;
    barrier();
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) partial[t] = maximum ? max(partial[t], partial[t + s]) : partial[t] + partial[t + s];
        barrier();
    }
    float result = partial[0];
    barrier();
    return result;
}

void main() {
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        uint base = row * p.width;
        float largest = -1.0 / 0.0;
        for (uint c = gl_LocalInvocationID.x; c < p.width; c += 256) largest = max(largest, p.src.v[base + c]);
        largest = reduce(largest, true);
        float sum = 0.0;
        for (uint c = gl_LocalInvocationID.x; c < p.width; c += 256) sum += exp(p.src.v[base + c] - largest);
        float scale = 1.0 / reduce(sum, false);
        for (uint c = gl_LocalInvocationID.x; c < p.width; c += 256) p.dst.v[base + c] = exp(p.src.v[base + c] - largest) * scale;
    }
}
