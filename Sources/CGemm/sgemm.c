// The general product on the AVX-512 tiles: B is packed per block of columns as a weight is at
// load (both layouts, through `cgemm_pack_strided`'s strides), or read in place when few rows
// use it; A goes through the product's own sliver packing (transposed first when it comes
// transposed). It replaces OpenBLAS on AVX-512 machines: Debian's OpenBLAS 0.3.21 picks its
// kernel from the CPU model, and on CPUs newer than it knows (Sapphire and Emerald Rapids) it
// falls back to its SSE3 "Prescott" kernel, which ran the SAM decoder's products at a fifth of
// the AVX-512 tile's rate. On AVX2 machines OpenBLAS's Haswell kernel stays: this product on
// the AVX2 tile measured 2-9 % slower there (SAM encoder and decoder).
#include "cgemm.h"
#include "internal.h"

#include <string.h>

enum {
    IN_PLACE_ROWS = 96,  // at most this many rows read B in place, unpacked
};

void cgemm_sgemm_avx512(long m, long n, long k, float alpha,
                        const float *a, long lda, int transpose_a, const float *b, long ldb, int transpose_b,
                        int accumulate, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    if (!transpose_a && !transpose_b && n % NR == 0 && m <= IN_PLACE_ROWS) {
        // Few rows use each packed value of B few times: packing it would cost more than the
        // product gains from reading it packed (the SAM decoder's per-prompt products: 56 rows
        // against 4096 x 256).
        cgemm_product_in_place_avx512(m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc);
        return;
    }
    // Columns per block: whole panels, as many as B_BLOCK holds (at least one).
    long block = B_BLOCK / k / NR * NR;
    if (block < NR) block = NR;
    if (block > n) block = (n + NR - 1) / NR * NR;
    size_t packed_floats = ((size_t)block * k + 15) & ~(size_t)15;
    float *packed = cgemm_workspace_slot(WORKSPACE_OPERANDS, packed_floats + (transpose_a ? (size_t)m * k : 0));
    if (transpose_a) {
        // a is [k, m]: its rows become columns of a row-major [m, k] copy.
        float *rows = packed + packed_floats;
        for (long p = 0; p < k; p++)
            for (long i = 0; i < m; i++) rows[i * k + p] = a[p * lda + i];
        a = rows;
        lda = k;
    }
    // Output j's input p is b[p * ldb + j], or b[j * ldb + p] when b is transposed.
    long n_stride = transpose_b ? ldb : 1, k_stride = transpose_b ? 1 : ldb;
    for (long j0 = 0; j0 < n; j0 += block) {
        long columns = n - j0 < block ? n - j0 : block;
        cgemm_pack_strided(b + j0 * n_stride, columns, k, n_stride, k_stride, packed);
        cgemm_packed_product_avx512(0, m, columns, k, a, lda, packed, 0, (columns + NR - 1) / NR, alpha, c + j0, ldc,
                                    NULL, accumulate ? c + j0 : NULL, ldc, CGEMM_IDENTITY);
    }
}
