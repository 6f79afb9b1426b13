#ifndef CGEMM_H
#define CGEMM_H

#include <stddef.h>

/// Floats in a packed `[n, k]` weight (`cgemm_pack_weight`): `n` rounded up to 16.
size_t cgemm_packed_count(long n, long k);

/// Packs a row-major `[n, k]` linear weight for `cgemm_packed_product`: per block of inputs
/// (`k` split into equal blocks of at most 768), panels of 16 outputs, each `[block, 16]`;
/// outputs past `n` are zero.
void cgemm_pack_weight(const float *weight, long n, long k, float *packed);

/// `c[rows, columns] (+)= a[rows, 0..<k] * weight[columns, 0..<k]^T` for rows `row_begin..<row_end`
/// and the outputs of panels `panel_begin..<panel_end` (16 each; the last may be partial), with
/// `weight` packed by `cgemm_pack_weight` for `n` outputs. `accumulate` adds to `c` instead of
/// overwriting it. AVX2 and FMA: call only where the CPU has them.
void cgemm_packed_product(long row_begin, long row_end, long n, long k, const float *a, long lda,
                          const float *packed, long panel_begin, long panel_end,
                          float *c, long ldc, int accumulate);

#endif
