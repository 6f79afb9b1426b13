#version 460
// Each row of C values: (x - mean) / sqrt(var + eps) * weight + bias, one workgroup a row,
// where x is the row of `src` plus (FLAG_RESIDUAL) the row of `residual`. `src` may hold
// fewer rows than the result (batch 1 against the residual's batch): row r reads src row
// r % srcRows.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats residual;
    Floats weight;
    Floats bias;
    Floats dst;
    uint rows;
    uint srcRows;
    uint C;
    float eps;
    uint flags;  // 1: residual
} p;

shared float partial[256];

float reduceSum(float value) {
    uint t = gl_LocalInvocationID.x;
    partial[t] = value;
    barrier();
    for (uint s = 128; s > 0; s >>= 1) {
        if (t < s) partial[t] += partial[t + s];
        barrier();
    }
    float total = partial[0];
    barrier();
    return total;
}

void main() {
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        uint s = (row % p.srcRows) * p.C, r = row * p.C;
        bool residual = (p.flags & 1u) != 0u;
        float sum = 0.0;
        for (uint c = gl_LocalInvocationID.x; c < p.C; c += 256) sum += p.src.v[s + c] + (residual ? p.residual.v[r + c] : 0.0);
        float mean = reduceSum(sum) / float(p.C);
        float squares = 0.0;
        for (uint c = gl_LocalInvocationID.x; c < p.C; c += 256) {
            float d = p.src.v[s + c] + (residual ? p.residual.v[r + c] : 0.0) - mean;
            squares += d * d;
        }
        float rstd = inversesqrt(reduceSum(squares) / float(p.C) + p.eps);
        for (uint c = gl_LocalInvocationID.x; c < p.C; c += 256) {
            float x = p.src.v[s + c] + (residual ? p.residual.v[r + c] : 0.0);
            p.dst.v[r + c] = (x - mean) * rstd * p.weight.v[c] + p.bias.v[c];
        }
    }
}
