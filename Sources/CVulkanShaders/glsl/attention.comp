#version 460
// softmax(scale q k^T + terms) v for one (batch, head) item and 64 query rows per workgroup,
// one thread a query row, keys and values streamed through shared memory KT at a time with
// an online softmax: the Nq x Nk scores never exist. The result is [B, Nq, heads * dv]: the
// heads already recombined, as the CPU backend gives them.
//
// Terms: a causal mask; an additive bias [heads, Nq, Nk] or [B, heads, Nq, Nk]; SAM's
// decomposed relative positions, height [B, heads, Nq, kh] and width [B, heads, Nq, kw]
// (key = row * kw + column). q, k and v are strided views with unit stride along depth.
#include "common.glsl"

layout(constant_id = 0) const uint DMAX = 64;  // the largest head depth this build holds
layout(constant_id = 1) const uint KT = 16;    // keys per tile
layout(local_size_x = 64) in;

const uint FLAG_CAUSAL = 1u, FLAG_BIAS = 2u, FLAG_BIAS_PER_BATCH = 4u, FLAG_RELATIVE = 8u;

layout(push_constant, scalar) uniform Parameters {
    Floats q;
    Floats k;
    Floats v;
    Floats dst;
    Floats bias;
    Floats height;
    Floats width;
    uint heads, Nq, Nk, D, DV;
    int qBatch, qHead, qRow;
    int kBatch, kHead, kRow;
    int vBatch, vHead, vRow;
    float scale;
    uint flags;
    uint kh, kw;
} p;

shared float Ks[KT][DMAX];
shared float Vs[KT][DMAX];

void main() {
    uint item = gl_WorkGroupID.y, batch = item / p.heads, head = item % p.heads;
    uint query = gl_WorkGroupID.x * 64 + gl_LocalInvocationID.x;
    bool inRange = query < p.Nq;
    int qBase = int(batch) * p.qBatch + int(head) * p.qHead + int(query) * p.qRow;
    int kBase = int(batch) * p.kBatch + int(head) * p.kHead;
    int vBase = int(batch) * p.vBatch + int(head) * p.vHead;

    float qRow[DMAX];
    float acc[DMAX];
    for (uint d = 0; d < DMAX; d++) {
        qRow[d] = (inRange && d < p.D) ? p.q.v[qBase + int(d)] : 0.0;
        acc[d] = 0.0;
    }
    float running = MASKED, total = 0.0;
    uint biasBase = ((p.flags & FLAG_BIAS_PER_BATCH) != 0u ? item : head) * p.Nq * p.Nk + query * p.Nk;
    uint relativeBase = item * p.Nq + query;

    for (uint k0 = 0; k0 < p.Nk; k0 += KT) {
        barrier();
        for (uint e = gl_LocalInvocationID.x; e < KT * DMAX; e += 64) {
            uint j = e / DMAX, d = e % DMAX, key = k0 + j;
            Ks[j][d] = (key < p.Nk && d < p.D) ? p.k.v[kBase + int(key) * p.kRow + int(d)] : 0.0;
            Vs[j][d] = (key < p.Nk && d < p.DV) ? p.v.v[vBase + int(key) * p.vRow + int(d)] : 0.0;
        }
        barrier();
        if (!inRange) continue;

        float scores[KT];
        float largest = running;
        for (uint j = 0; j < KT; j++) {
            uint key = k0 + j;
            float s = MASKED;
            if (key < p.Nk && !((p.flags & FLAG_CAUSAL) != 0u && key > query)) {
                float dot = 0.0;
                for (uint d = 0; d < p.D; d++) dot = fma(qRow[d], Ks[j][d], dot);
                s = dot * p.scale;
                if ((p.flags & FLAG_BIAS) != 0u) s += p.bias.v[biasBase + key];
                if ((p.flags & FLAG_RELATIVE) != 0u) {
                    s += p.height.v[relativeBase * p.kh + key / p.kw] + p.width.v[relativeBase * p.kw + key % p.kw];
                }
            }
            scores[j] = s;
            largest = max(largest, s);
        }
        if (largest <= MASKED) continue;  // every key so far masked
        float correction = exp2ulp(running - largest);
        total *= correction;
        for (uint d = 0; d < p.DV; d++) acc[d] *= correction;
        for (uint j = 0; j < KT; j++) {
            float weight = exp2ulp(scores[j] - largest);
            total += weight;
            for (uint d = 0; d < p.DV; d++) acc[d] = fma(weight, Vs[j][d], acc[d]);
        }
        running = largest;
    }
    if (!inRange) return;
    uint out0 = (batch * p.Nq + query) * p.heads * p.DV + head * p.DV;
    // A query whose every key is masked gets zeros, as on the CPU.
    for (uint d = 0; d < p.DV; d++) p.dst.v[out0 + d] = total > 0.0 ? acc[d] / total : 0.0;
}
