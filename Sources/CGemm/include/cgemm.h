#ifndef CGEMM_H
#define CGEMM_H

#include <stddef.h>

/// Floats in a packed `[n, k]` weight (`cgemm_pack_strided`): `n` rounded up to 16.
size_t cgemm_packed_count(long n, long k);

/// Packs an `[n, k]` weight for `cgemm_packed_product`: per block of inputs (`k` split into equal
/// blocks of at most 768), panels of 16 outputs, each `[block, 16]`; outputs past `n` are zero.
/// Output `j`'s input `i` is `weight[j * n_stride + i * k_stride]`: a row-major linear weight is
/// `n_stride = k, k_stride = 1`; attention's values `[keys, d]` are `1, ld`.
void cgemm_pack_strided(const float *weight, long n, long k, long n_stride, long k_stride, float *packed);

/// An activation applied as a product's outputs are stored.
enum cgemm_activation {
    CGEMM_IDENTITY = 0,
    CGEMM_QUICK_GELU = 1, // CLIP's x * sigmoid(1.702 x)
    CGEMM_GELU = 2,       // nn.GELU(): x/2 * (1 + erf(x / sqrt 2))
};

/// `c[rows, columns] = activation(alpha * a[rows, 0..<k] * weight[columns, 0..<k]^T + bias[columns] + residual[rows, columns])`
/// for rows `row_begin..<row_end` and the outputs of panels `panel_begin..<panel_end` (16 each; the
/// last may be partial), with `weight` packed by `cgemm_pack_strided` for `n` outputs. `bias` and
/// `residual` (rows `ldr` apart, and may be `c` itself) may be NULL. AVX2 and FMA: call only where
/// the CPU has them.
void cgemm_packed_product(long row_begin, long row_end, long n, long k, const float *a, long lda,
                          const float *packed, long panel_begin, long panel_end,
                          float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                          enum cgemm_activation activation);

/// One head of attention without mask: for each of `queries` rows of `q`,
/// `out[i, 0..<value_depth] = softmax_j(scale * q[i] . k[j] + terms[j][i]) v[j]` over `keys` rows
/// of `k` and `v` (`depth` and `value_depth` wide; rows `ldq`, `ldk`, `ldv`, `ldo` floats apart).
/// `terms` (NULL for none) are additive terms, transposed: key `j`'s for query `i` at
/// `terms[j * ldt + i]`, each row readable up to `queries` rounded up to 64 (what lies past
/// `queries` is read and not used). AVX2 and FMA: call only where the CPU has them.
void cgemm_attention_head(long queries, long keys, long depth, long value_depth, float scale,
                          const float *terms, long ldt,
                          const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                          float *out, long ldo);

/// `cgemm_packed_product` on AVX-512 (x86-64-v4): the same arguments, the same packed weight, and
/// the same results, bit for bit.
void cgemm_packed_product_avx512(long row_begin, long row_end, long n, long k, const float *a, long lda,
                                 const float *packed, long panel_begin, long panel_end,
                                 float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                                 enum cgemm_activation activation);

/// `cgemm_attention_head` on AVX-512 (x86-64-v4), 64 queries per pass.
void cgemm_attention_head_avx512(long queries, long keys, long depth, long value_depth, float scale,
                                 const float *terms, long ldt,
                                 const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                                 float *out, long ldo);

/// Softmax of the first `rows` rounded down to 16 of `rows` rows of `width` < 16 floats each, in
/// place, sixteen rows at a time (AVX-512): their sums and maxima gathered, where a row at a time
/// takes a few scalar steps per value (the SAM decoder's rows of 7 tokens). Returns the rows done.
/// A fully masked row (all -infinity) becomes zeros; a NaN makes its row NaN.
long cgemm_softmax_narrow_avx512(float *x, long rows, long width);

/// `cgemm_attention_head` in bfloat16 (AVX512_BF16): q, k, v and the probabilities rounded to
/// bfloat16 where they are multiplied, the products summed in float32; scores, softmax and sums
/// in float32.
void cgemm_attention_head_bf16(long queries, long keys, long depth, long value_depth, float scale,
                               const float *terms, long ldt,
                               const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                               float *out, long ldo);

/// `c[m, n] = a b`, plus `c` itself when `accumulate`, in bfloat16 (AVX512_BF16): row-major `a
/// [m, k]` and `b [k, n]` rounded to bfloat16 as they are packed, sums in float32.
void cgemm_sgemm_bf16(long m, long n, long k, const float *a, long lda, const float *b, long ldb, int accumulate, float *c, long ldc);

/// 32-bit words in a weight packed by `cgemm_pack_bf16`: `n` rounded up to 16, times `k` inputs
/// in pairs.
size_t cgemm_packed_count_bf16(long n, long k);

/// Packs a row-major `[n, k]` weight for `cgemm_packed_product_bf16`, each value rounded to
/// bfloat16 (to nearest, ties to even; subnormals as zero): per block of input pairs, panels of
/// 16 outputs, each `[pairs, 16]` words holding inputs `2p` (low half) and `2p + 1`.
void cgemm_pack_bf16(const float *weight, long n, long k, unsigned *packed);

/// `cgemm_packed_product` with a weight packed by `cgemm_pack_bf16` and the activations rounded
/// to bfloat16 as they are packed; the products summed in float32. AVX512_BF16: call only
/// where the CPU has it.
void cgemm_packed_product_bf16(long row_begin, long row_end, long n, long k, const float *a, long lda,
                               const unsigned *packed, long panel_begin, long panel_end,
                               float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                               enum cgemm_activation activation);

/// Row-major `c[m, n] = alpha * op(a) op(b)`, plus `c` itself when `accumulate`: `op(a)` is
/// `a [m, k]`, or `a [k, m]` transposed; `op(b)` is `b [k, n]`, or `b [n, k]` transposed (rows
/// `lda`, `ldb` floats apart). On one thread, with the AVX-512 tiles: call only where the CPU
/// runs x86-64-v4.
void cgemm_sgemm_avx512(long m, long n, long k, float alpha,
                        const float *a, long lda, int transpose_a, const float *b, long ldb, int transpose_b,
                        int accumulate, float *c, long ldc);

#endif
