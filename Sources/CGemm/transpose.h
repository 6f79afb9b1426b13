// Transpositions in registers, for packing operands: what the products (cgemm.c) and the
// attention heads share. AVX2: call only where the CPU has it, as every packing is.
#ifndef CGEMM_TRANSPOSE_H
#define CGEMM_TRANSPOSE_H

#include <immintrin.h>

#include "internal.h"

/// Rows `r[0..<8]` shuffled so that `r[c]`, c < 4, holds column c of rows 0-3 in its low half
/// and column c + 4 in its high half, and `r[c + 4]` the same of rows 4-7.
TARGET static inline void shuffle_columns(__m256 r[8]) {
    __m256 t[8];
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
        r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
        r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
}

/// `out[i * out_stride + j] = in[j * in_stride + i]` for i, j < 8: an 8x8 block transposed.
TARGET static inline void transpose8x8(const float *in, long in_stride, float *out, long out_stride) {
    __m256 r[8];
    for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(in + j * in_stride);
    shuffle_columns(r);
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

/// `out[i * ldo + j] = in[j * ldi + i]` for j < rows, i < columns: a matrix transposed by 8x8
/// blocks, its edges an element at a time.
TARGET static inline void transpose(const float *in, long ldi, long rows, long columns, float *out, long ldo) {
    long whole_rows = rows & ~7L, whole_columns = columns & ~7L;
    for (long j0 = 0; j0 < whole_rows; j0 += 8)
        for (long i0 = 0; i0 < whole_columns; i0 += 8) transpose8x8(in + j0 * ldi + i0, ldi, out + i0 * ldo + j0, ldo);
    for (long j = 0; j < rows; j++)
        for (long i = j < whole_rows ? whole_columns : 0; i < columns; i++) out[i * ldo + j] = in[j * ldi + i];
}

/// `out[i * MR + r] = rows[r][first + i]` for r < MR, i < 8: six rows' eight inputs interleaved,
/// as an 8x8 transpose whose last two rows are not stored.
TARGET static inline void interleave6x8(const float *rows[MR], long first, float *out) {
    __m256 r[8];
    for (int j = 0; j < MR; j++) r[j] = _mm256_loadu_ps(rows[j] + first);
    r[6] = r[7] = _mm256_setzero_ps();
    shuffle_columns(r);
    // Each input's six values as four and two (a masked store is microcoded on AMD's cores).
    for (int c = 0; c < 4; c++) {
        __m128 low = _mm256_castps256_ps128(r[c]), high = _mm256_extractf128_ps(r[c], 1);
        __m128 low4 = _mm256_castps256_ps128(r[c + 4]), high4 = _mm256_extractf128_ps(r[c + 4], 1);
        // Column c: rows 0-3 in `low`, rows 4-5 in the low half of `low4`; column c + 4 likewise.
        _mm_storeu_ps(out + c * MR, low);
        _mm_storel_pi((__m64 *)(out + c * MR + 4), low4);
        _mm_storeu_ps(out + (c + 4) * MR, high);
        _mm_storel_pi((__m64 *)(out + (c + 4) * MR + 4), high4);
    }
}

#endif
