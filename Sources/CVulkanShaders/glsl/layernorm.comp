#version 460
// Each row of C values: (x - mean) / sqrt(var + eps) * weight + bias, where x is the row of
// `src` plus (FLAG_RESIDUAL) the row of `residual`. One subgroup a row: its reductions are
// subgroup operations, with no barrier and no shared memory, and a workgroup holds as many rows
// as it has subgroups. `src` may hold fewer rows than the result (batch 1 against the
// residual's batch): row r reads src row r % srcRows.
#include "common.glsl"
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
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

void main() {
    bool residual = (p.flags & 1u) != 0u;
    uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    for (uint row = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; row < p.rows; row += gl_NumWorkGroups.x * gl_NumSubgroups) {
        uint s = (row % p.srcRows) * p.C, r = row * p.C;
        float sum = 0.0;
        for (uint c = lane; c < p.C; c += lanes) sum += p.src.v[s + c] + (residual ? p.residual.v[r + c] : 0.0);
        float mean = subgroupAdd(sum) / float(p.C);
        float squares = 0.0;
        for (uint c = lane; c < p.C; c += lanes) {
            float d = p.src.v[s + c] + (residual ? p.residual.v[r + c] : 0.0) - mean;
            squares += d * d;
        }
        float rstd = inversesqrt(subgroupAdd(squares) / float(p.C) + p.eps);
        for (uint c = lane; c < p.C; c += lanes) {
            float x = p.src.v[s + c] + (residual ? p.residual.v[r + c] : 0.0);
            p.dst.v[r + c] = (x - mean) * rstd * p.weight.v[c] + p.bias.v[c];
        }
    }
}
