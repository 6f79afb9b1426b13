#version 460
// Binary masks as bits, and counts of values above thresholds (mask post-processing, so that
// only bits cross to the host): src [planes, height, width]. Word w of a plane's bits holds
// pixels 32 w ... 32 w + 31 of the plane's column-major order (x * height + y, the order of
// SAM's RLE), pixel i in bit i % 32, set where the value is above `threshold`. counts[plane *
// countCount + t] gains the number of values above thresholds[t] (zeroed by the host first).
// One workgroup row per plane (gl_WorkGroupID.y), so each subgroup sums one plane's counts.
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
layout(local_size_x = 256) in;

layout(push_constant, scalar) uniform Parameters {
    Floats src;
    Uints bits;
    Uints counts;
    uint firstPlane, height, width, words, countCount;
    float threshold;
    float thresholds[4];
} p;

void main() {
    uint plane = p.firstPlane + gl_WorkGroupID.y, pixels = p.height * p.width;
    uint base = plane * pixels;
    uint counted[4] = uint[4](0, 0, 0, 0);
    for (uint word = gl_GlobalInvocationID.x; word < p.words; word += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
        uint value = 0, first = word * 32, last = min(first + 32, pixels);
        uint x = first / p.height, y = first - x * p.height;
        for (uint i = first; i < last; i++) {
            float v = p.src.v[base + y * p.width + x];
            if (v > p.threshold) value |= 1u << (i - first);
            for (uint t = 0; t < p.countCount; t++) counted[t] += uint(v > p.thresholds[t]);
            if (++y == p.height) { y = 0; x++; }
        }
        p.bits.v[plane * p.words + word] = value;
    }
    for (uint t = 0; t < p.countCount; t++) {
        uint sum = subgroupAdd(counted[t]);
        if (subgroupElect() && sum != 0) atomicAdd(p.counts.v[plane * p.countCount + t], sum);
    }
}
