// C = activate(A B + bias) + residual for a batch of products with two batch levels
// (batch = outer * inner): A [M, K] and B [K, N] are strided views (a linear layer's packed
// weight is B as [K, N]; a plain [N, K] weight is the same with its strides swapped), C is
// [M, N] with unit column stride, the residual laid out as C.
//
// Tiles of BM x BN outputs per workgroup, BK deep through shared memory; each of the
// (BM/4) x (BN/4) threads keeps a 4 x 4 block of sums, its rows and columns interleaved
// (row ty + i * BM/4) so neighbouring threads read neighbouring shared words.
//
// Included by gemm.comp and by gemmhalf.comp, which defines B_HALF: B then holds float16 (a
// linear layer's weight stored at half the bytes), read into float32 tiles, so the sums are
// float32 either way. Only gemmhalf needs 16-bit storage from the device.
#ifdef B_HALF
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"

layout(constant_id = 0) const uint BM = 64;
layout(constant_id = 1) const uint BN = 64;
layout(constant_id = 2) const uint BK = 16;
layout(local_size_x_id = 3) in;  // (BM / 4) * (BN / 4)
#ifdef B_HALF
layout(buffer_reference, scalar, buffer_reference_align = 2) buffer Halfs { float16_t v[]; };
#endif

const uint FLAG_BIAS = 1u, FLAG_BIAS_PER_ROW = 2u, FLAG_RESIDUAL = 4u;

layout(push_constant, scalar) uniform Parameters {
    Floats a;
#ifdef B_HALF
    Halfs b;
#else
    Floats b;
#endif
    Floats c;
    Floats bias;
    Floats residual;
    uint M, N, K;
    uint inner;                  // batch index z = outer * inner + inner index
    int aOuter, aInner, aRow, aCol;
    int bOuter, bInner, bRow, bCol;
    int cOuter, cInner, cRow;
    int biasInner;               // bias offset per inner batch index (a grouped convolution's group)
    uint flags;                  // FLAG_*, activation << 8
} p;

shared float As[BK][BM];
shared float Bs[BK][BN];

void main() {
    const uint threads = (BM / 4) * (BN / 4);
    uint tid = gl_LocalInvocationID.x;
    uint tx = tid % (BN / 4), ty = tid / (BN / 4);
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    uint outer = gl_WorkGroupID.z / p.inner, inner = gl_WorkGroupID.z % p.inner;
    int aBase = int(outer) * p.aOuter + int(inner) * p.aInner;
    int bBase = int(outer) * p.bOuter + int(inner) * p.bInner;

    float sums[4][4];
    for (uint i = 0; i < 4; i++) for (uint j = 0; j < 4; j++) sums[i][j] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += threads) {
            uint row = e / BK, k = e % BK;
            uint m = m0 + row, kk = k0 + k;
            As[k][row] = (m < p.M && kk < p.K) ? p.a.v[aBase + int(m) * p.aRow + int(kk) * p.aCol] : 0.0;
        }
        for (uint e = tid; e < BK * BN; e += threads) {
            uint k = e / BN, col = e % BN;
            uint n = n0 + col, kk = k0 + k;
            Bs[k][col] = (n < p.N && kk < p.K) ? float(p.b.v[bBase + int(kk) * p.bRow + int(n) * p.bCol]) : 0.0;
        }
        barrier();
        for (uint k = 0; k < BK; k++) {
            float av[4], bv[4];
            for (uint i = 0; i < 4; i++) av[i] = As[k][ty + i * (BM / 4)];
            for (uint j = 0; j < 4; j++) bv[j] = Bs[k][tx + j * (BN / 4)];
            for (uint i = 0; i < 4; i++) for (uint j = 0; j < 4; j++) sums[i][j] = fma(av[i], bv[j], sums[i][j]);
        }
        barrier();
    }

    uint activation = p.flags >> 8;
    int cBase = int(outer) * p.cOuter + int(inner) * p.cInner;
    for (uint i = 0; i < 4; i++) {
        uint m = m0 + ty + i * (BM / 4);
        if (m >= p.M) continue;
        for (uint j = 0; j < 4; j++) {
            uint n = n0 + tx + j * (BN / 4);
            if (n >= p.N) continue;
            float value = sums[i][j];
            if ((p.flags & FLAG_BIAS) != 0u) {
                value += p.bias.v[int(inner) * p.biasInner + int((p.flags & FLAG_BIAS_PER_ROW) != 0u ? m : n)];
            }
            value = activate(value, activation);
            int index = cBase + int(m) * p.cRow + int(n);
            if ((p.flags & FLAG_RESIDUAL) != 0u) value += p.residual.v[index];
            p.c.v[index] = value;
        }
    }
}
