#version 460
// Softmax along each contiguous row of `width` values. One subgroup a row (subgroup
// reductions: no barrier, no shared memory); a workgroup holds as many rows as subgroups.
#include "common.glsl"
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Floats dst;
    uint rows;
    uint width;
} p;

void main() {
    uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    for (uint row = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; row < p.rows; row += gl_NumWorkGroups.x * gl_NumSubgroups) {
        uint base = row * p.width;
        float largest = MASKED;
        for (uint c = lane; c < p.width; c += lanes) largest = max(largest, p.src.v[base + c]);
        largest = subgroupMax(largest);
        float sum = 0.0;
        for (uint c = lane; c < p.width; c += lanes) sum += exp2ulp(p.src.v[base + c] - largest);
        // A row of nothing but masked (-inf) scores is all zeros, as on the CPU.
        float total = subgroupAdd(sum);
        float scale = total > 0.0 ? 1.0 / total : 0.0;
        for (uint c = lane; c < p.width; c += lanes) p.dst.v[base + c] = exp2ulp(p.src.v[base + c] - largest) * scale;
    }
}
