// The product and attention head of cgemm.c and attention.c for AVX-512: the same packed
// weights, six rows of activations (read in place) against four panels at a time. A 6x64 tile keeps 24
// accumulators of 16 floats in the 32 registers; per input, six broadcasts and four weight
// vectors feed 24 multiply-adds, within the two vector loads a cycle of the cores that have
// two FMA units. Every output sums its inputs in the same order as the AVX2 tile, and the
// epilogue and softmax apply the same operations lane for lane, so both builds give the same
// bits.
#include "cgemm.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include "transpose.h"
#include "vector_math.h"

enum {
    GROUP = 4,           // panels per tile
    NQ = GROUP * NR,     // attention's queries per pass
};

/// Adds one sliver `a [kc][MR]` times `width` panels into `acc`: panel `w`'s input `i` is at
/// `b + w * panel_stride + i * k_stride`. Inlined with a constant `width`, so that the
/// accumulators stay in registers.
TARGET512 __attribute__((always_inline)) static inline void accumulate(const int width, long kc, const float *a, const float *b,
                                                                      long k_stride, long panel_stride, __m512 acc[MR][GROUP]) {
    for (int r = 0; r < MR; r++)
        for (int w = 0; w < GROUP; w++) acc[r][w] = _mm512_setzero_ps();
    _Pragma("clang loop unroll_count(2)")
    for (long i = 0; i < kc; i++, a += MR, b += k_stride) {
        __m512 panel[GROUP];
        for (int w = 0; w < width; w++) panel[w] = _mm512_loadu_ps(b + w * panel_stride);
        for (int r = 0; r < MR; r++) {
            __m512 x = _mm512_set1_ps(a[r]);
            for (int w = 0; w < width; w++) acc[r][w] = _mm512_fmadd_ps(x, panel[w], acc[r][w]);
        }
    }
}

/// `accumulate` for rows `0..<rows` of `a` read in place, `lda` apart: the rows past `rows`
/// repeat row 0, whose sums the caller does not store.
///
/// The product reads its activations so, not packed into slivers as the AVX2 product does:
/// with 32 registers the six row pointers stay in registers, and the packing cost more than
/// it saved on every shape measured on Zen 4 (the SAM decoder's 56-output products 20 %
/// faster, its upscaling 5 %, CLIP's 1848 x 3072 x 768 linear 7 %; none slower, leading
/// dimensions of 4 KB multiples included).
TARGET512 __attribute__((always_inline)) static inline void accumulate_rows(const int width, long kc, const float *a, long lda, long rows,
                                                                           const float *b, long k_stride, long panel_stride,
                                                                           __m512 acc[MR][GROUP]) {
    const float *row[MR];
    for (int r = 0; r < MR; r++) row[r] = a + (r < rows ? r : 0) * lda;
    for (int r = 0; r < MR; r++)
        for (int w = 0; w < GROUP; w++) acc[r][w] = _mm512_setzero_ps();
    _Pragma("clang loop unroll_count(2)")
    for (long i = 0; i < kc; i++, b += k_stride) {
        __m512 panel[GROUP];
        for (int w = 0; w < width; w++) panel[w] = _mm512_loadu_ps(b + w * panel_stride);
        for (int r = 0; r < MR; r++) {
            __m512 x = _mm512_set1_ps(row[r][i]);
            for (int w = 0; w < width; w++) acc[r][w] = _mm512_fmadd_ps(x, panel[w], acc[r][w]);
        }
    }
}

/// The lanes of a panel whose first column is `first` of `columns`.
TARGET512 static inline __mmask16 lanes(long columns, long first) {
    long left = columns - first;
    return left >= NR ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

/// Stores `acc`'s rows `0..<rows` and `width` panels into `c`, as `activation(alpha * acc +
/// start)` for the first `columns` columns, where `start` is `c` itself when accumulating, else
/// `residual` (rows `ldr` apart) plus `bias`, each when given: cgemm.c's `tile` epilogue.
TARGET512 __attribute__((always_inline)) static inline void store(const int width, __m512 acc[MR][GROUP], float *c, long ldc,
                                                                 long rows, long columns, float alpha, int accumulate_c,
                                                                 const float *bias, const float *residual, long ldr,
                                                                 enum cgemm_activation activation) {
    for (int r = 0; r < MR && r < rows; r++) {
        float *q = c + r * ldc;
        const float *start = accumulate_c ? q : residual ? residual + r * ldr : NULL;
        for (int w = 0; w < width; w++) {
            __mmask16 mask = lanes(columns, w * NR);
            __m512 v = acc[r][w];
            if (alpha != 1) v = _mm512_mul_ps(_mm512_set1_ps(alpha), v);
            if (start) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, start + w * NR), v);
            if (bias) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias + w * NR), v);
            if (activation == CGEMM_QUICK_GELU) v = quick_gelu512(v);
            else if (activation == CGEMM_GELU) v = gelu512(v);
            _mm512_mask_storeu_ps(q + w * NR, mask, v);
        }
    }
}

/// `c[0..<rows][0..<columns] = activation(alpha * a * b + start)` for six rows of `a` (`lda`
/// apart) and `width` panels (`accumulate`'s strides): `store`'s epilogue.
TARGET512 __attribute__((always_inline)) static inline void tile(const int width, long kc, const float *a, long lda, const float *b,
                                                                long k_stride, long panel_stride,
                                                                float *c, long ldc, long rows, long columns, float alpha,
                                                                int accumulate_c, const float *bias, const float *residual,
                                                                long ldr, enum cgemm_activation activation) {
    for (long r = 0; r < rows; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    __m512 acc[MR][GROUP];
    accumulate_rows(width, kc, a, lda, rows, b, k_stride, panel_stride, acc);
    store(width, acc, c, ldc, rows, columns, alpha, accumulate_c, bias, residual, ldr, activation);
}

/// The product's loops, over a packed weight (`ldb` 0) or over `b [k, n]` read in place (rows
/// `ldb` apart, `n` a multiple of NR): blocks of inputs, blocks of rows (their inputs of the
/// block within L2), groups of panels, tiles.
TARGET512 static void product(long row_begin, long row_end, long n, long k, const float *a, long lda,
                              const float *b, long ldb, long panel_begin, long panel_end,
                              float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                              enum cgemm_activation activation) {
    long m = row_end - row_begin;
    if (m <= 0 || panel_end <= panel_begin || k <= 0) return;
    long panels = (n + NR - 1) / NR, kc_max = k_block_size(k);
    long block_tiles = row_block_tiles(m, kc_max);
    for (long k0 = 0; k0 < k; k0 += kc_max) {
        long kc = k - k0 < kc_max ? k - k0 : kc_max;
        // Packed: the block's panels one after another, each [kc][NR]. In place: rows of b.
        const float *block = ldb ? b + k0 * ldb : b + (size_t)k0 * panels * NR;
        long k_stride = ldb ? ldb : NR, panel_stride = ldb ? NR : kc * NR;
        int first = k0 == 0, last = k0 + kc == k;
        for (long r0 = row_begin; r0 < row_end; r0 += block_tiles * MR) {
            long r1 = r0 + block_tiles * MR < row_end ? r0 + block_tiles * MR : row_end;
            long block_tiles_here = (r1 - r0 + MR - 1) / MR;
            for (long p = panel_begin; p < panel_end; p += GROUP) {
                long width = panel_end - p < GROUP ? panel_end - p : GROUP;
                const float *panel = block + p * panel_stride;
                // A packed weight's next group is fetched a share per tile while this one is in use.
                long next_width = panel_end - p - width < GROUP ? panel_end - p - width : GROUP;
                const char *next = (const char *)(panel + width * panel_stride);
                long lines = ldb ? 0 : next_width * kc * NR * (long)sizeof(float) / 64;
                long per_tile = (lines + block_tiles_here - 1) / block_tiles_here;
                long columns = n - p * NR;
                for (long t = 0; t < block_tiles_here; t++) {
                    for (long l = t * per_tile; l < (t + 1) * per_tile && l < lines; l++) _mm_prefetch(next + l * 64, _MM_HINT_T0);
                    long row = r0 + t * MR, rows = r1 - row < MR ? r1 - row : MR;
                    const float *s = a + (size_t)row * lda + k0;
                    float *out = c + (size_t)row * ldc + p * NR;
                    const float *start_bias = first && bias ? bias + p * NR : NULL;
                    const float *start_residual = first && residual ? residual + (size_t)row * ldr + p * NR : NULL;
                    enum cgemm_activation act = last ? activation : CGEMM_IDENTITY;
#define TILE(w) tile(w, kc, s, lda, panel, k_stride, panel_stride, out, ldc, rows, columns, alpha, !first, start_bias, \
                     start_residual, ldr, act)
                    switch (width) {
                    case 4: TILE(4); break;
                    case 3: TILE(3); break;
                    case 2: TILE(2); break;
                    default: TILE(1); break;
                    }
#undef TILE
                }
            }
        }
    }
}

TARGET512 void cgemm_packed_product_avx512(long row_begin, long row_end, long n, long k, const float *a, long lda,
                                           const float *packed, long panel_begin, long panel_end,
                                           float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                                           enum cgemm_activation activation) {
    product(row_begin, row_end, n, k, a, lda, packed, 0, panel_begin, panel_end, alpha, c, ldc, bias, residual, ldr, activation);
}

TARGET512 void cgemm_product_in_place_avx512(long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                                             int accumulate, float *c, long ldc) {
    product(0, m, n, k, a, lda, b, ldb, 0, n / NR, alpha, c, ldc, NULL, accumulate ? c : NULL, ldc, CGEMM_IDENTITY);
}

// The product in bfloat16 (AVX512_BF16): `vdpbf16ps` multiplies two pairs of bfloat16 inputs
// and adds both products to a float32 sum, twice the multiply-adds of an FMA a cycle. Weights
// are rounded once as they are packed, activations as their slivers are; the tile and the
// epilogue are the float32 product's. Inputs are taken in pairs: a 32-bit word holds inputs
// 2p and 2p + 1 (the low half first), a panel's pair `[NR][2]`, a sliver's `[MR]` words.
#define TARGETBF16 __attribute__((target("avx2,fma,avx512f,avx512cd,avx512bw,avx512dq,avx512vl,avx512bf16")))

/// `x` rounded to bfloat16, to nearest with ties to even, as `vcvtneps2bf16` rounds it: a
/// subnormal as zero, a NaN kept quiet.
static unsigned short bfloat16(float x) {
    unsigned u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7F800000u) == 0) return (unsigned short)((u >> 16) & 0x8000u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (unsigned short)((u >> 16) | 0x40u);
    return (unsigned short)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

size_t cgemm_packed_count_bf16(long n, long k) { return (size_t)((n + NR - 1) / NR * NR) * (size_t)((k + 1) / 2); }

void cgemm_pack_bf16(const float *weight, long n, long k, unsigned *packed) {
    long pairs = (k + 1) / 2, panels = (n + NR - 1) / NR, kc_max = k_block_size(pairs);
    for (long p0 = 0; p0 < pairs; p0 += kc_max) {
        long kc = pairs - p0 < kc_max ? pairs - p0 : kc_max;
        unsigned *block = packed + (size_t)p0 * panels * NR;
        for (long panel = 0; panel < panels; panel++)
            for (long p = 0; p < kc; p++)
                for (long j = 0; j < NR; j++) {
                    long row = panel * NR + j, i = 2 * (p0 + p);
                    unsigned low = row < n ? bfloat16(weight[row * k + i]) : 0;
                    unsigned high = row < n && i + 1 < k ? bfloat16(weight[row * k + i + 1]) : 0;
                    block[((size_t)panel * kc + p) * NR + j] = low | high << 16;
                }
    }
}

/// Rows `r0..<r1` of `a`, input pairs `p0..<p0 + kc` (of `k` inputs), rounded to bfloat16 as
/// slivers `[tile][kc][MR]` of words; what lies past `r1` or `k` is zero.
TARGETBF16 static void pack_slivers_bf16(const float *a, long lda, long r0, long r1, long p0, long kc, long k, unsigned *out) {
    unsigned row_words[MR][KC_MAX + 16];
    for (long t = 0; r0 + t * MR < r1; t++) {
        for (long r = 0; r < MR; r++) {
            long row = r0 + t * MR + r;
            for (long p = 0; p < kc; p += 16) {
                // 32 inputs rounded by one instruction: the low 16 from `lo`, as word order wants.
                long first = 2 * (p0 + p), left = row < r1 ? k - first : 0;
                __mmask16 lo_lanes = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
                __mmask16 hi_lanes = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
                const float *x = a + row * lda + first;
                __m512 lo = _mm512_maskz_loadu_ps(lo_lanes, x), hi = _mm512_maskz_loadu_ps(hi_lanes, x + 16);
                _mm512_storeu_si512(row_words[r] + p, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
        }
        unsigned *sliver = out + (size_t)t * kc * MR;
        for (long p = 0; p < kc; p++)
            for (long r = 0; r < MR; r++) sliver[p * MR + r] = row_words[r][p];
    }
}

TARGETBF16 __attribute__((always_inline)) static inline void tile_bf16(const int width, long kc, const unsigned *a, const unsigned *b,
                                                                      long panel_stride, float *c, long ldc, long rows, long columns,
                                                                      float alpha, int accumulate_c, const float *bias,
                                                                      const float *residual, long ldr, enum cgemm_activation activation) {
    for (long r = 0; r < rows; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    __m512 acc[MR][GROUP];
    for (int r = 0; r < MR; r++)
        for (int w = 0; w < GROUP; w++) acc[r][w] = _mm512_setzero_ps();
    _Pragma("clang loop unroll_count(2)")
    for (long p = 0; p < kc; p++, a += MR, b += NR) {
        __m512bh panel[GROUP];
        for (int w = 0; w < width; w++) panel[w] = (__m512bh)_mm512_loadu_si512(b + w * panel_stride);
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r]);
            for (int w = 0; w < width; w++) acc[r][w] = _mm512_dpbf16_ps(acc[r][w], x, panel[w]);
        }
    }
    store(width, acc, c, ldc, rows, columns, alpha, accumulate_c, bias, residual, ldr, activation);
}

TARGETBF16 void cgemm_packed_product_bf16(long row_begin, long row_end, long n, long k, const float *a, long lda,
                                          const unsigned *packed, long panel_begin, long panel_end,
                                          float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                                          enum cgemm_activation activation) {
    long m = row_end - row_begin;
    if (m <= 0 || panel_end <= panel_begin || k <= 0) return;
    long pairs = (k + 1) / 2, panels = (n + NR - 1) / NR, kc_max = k_block_size(pairs);
    long block_tiles = row_block_tiles(m, kc_max);
    unsigned *sliver = (unsigned *)cgemm_workspace((size_t)block_tiles * MR * kc_max);
    for (long p0 = 0; p0 < pairs; p0 += kc_max) {
        long kc = pairs - p0 < kc_max ? pairs - p0 : kc_max;
        const unsigned *block = packed + (size_t)p0 * panels * NR;
        int first = p0 == 0, last = p0 + kc == pairs;
        for (long r0 = row_begin; r0 < row_end; r0 += block_tiles * MR) {
            long r1 = r0 + block_tiles * MR < row_end ? r0 + block_tiles * MR : row_end;
            pack_slivers_bf16(a, lda, r0, r1, p0, kc, k, sliver);
            long block_tiles_here = (r1 - r0 + MR - 1) / MR;
            for (long p = panel_begin; p < panel_end; p += GROUP) {
                long width = panel_end - p < GROUP ? panel_end - p : GROUP;
                const unsigned *panel = block + p * kc * NR;
                long columns = n - p * NR;
                for (long t = 0; t < block_tiles_here; t++) {
                    long row = r0 + t * MR, rows = r1 - row < MR ? r1 - row : MR;
                    const unsigned *s = sliver + (size_t)t * MR * kc;
                    float *out = c + (size_t)row * ldc + p * NR;
                    const float *start_bias = first && bias ? bias + p * NR : NULL;
                    const float *start_residual = first && residual ? residual + (size_t)row * ldr + p * NR : NULL;
                    enum cgemm_activation act = last ? activation : CGEMM_IDENTITY;
#define TILE(w) tile_bf16(w, kc, s, panel, kc * NR, out, ldc, rows, columns, alpha, !first, start_bias, start_residual, ldr, act)
                    switch (width) {
                    case 4: TILE(4); break;
                    case 3: TILE(3); break;
                    case 2: TILE(2); break;
                    default: TILE(1); break;
                    }
#undef TILE
                }
            }
        }
    }
}

/// Stores rows `0..<rows` of `acc` into `c [MR][NQ]`, plus `terms` (rows `ldt` apart) when
/// given; with `max`, its lanes also take the maximum over the rows stored.
TARGET512 __attribute__((always_inline)) static inline void panel_store(const int width, __m512 acc[MR][GROUP], const float *terms,
                                                                       long ldt, float *c, long rows, __m512 *max) {
    for (int r = 0; r < MR && r < rows; r++)
        for (int w = 0; w < width; w++) {
            if (terms) acc[r][w] = _mm512_add_ps(acc[r][w], _mm512_loadu_ps(terms + r * ldt + w * NR));
            _mm512_store_ps(c + r * NQ + w * NR, acc[r][w]);
            if (max) max[w] = _mm512_max_ps(max[w], acc[r][w]);
        }
}

/// Rows `0..<rows` of `c [MR][NQ]` = one sliver `a [kc][MR]` times `width` panels of `b [kc][NQ]`,
/// plus `terms` (rows `ldt` apart) when given; with `max`, its lanes also take the maximum over
/// the rows stored: attention.c's `panel_tile`.
TARGET512 __attribute__((always_inline)) static inline void panel_tile(const int width, long kc, const float *a, const float *b,
                                                                      const float *terms, long ldt, float *c, long rows, __m512 *max) {
    __m512 acc[MR][GROUP];
    accumulate(width, kc, a, b, NQ, NR, acc);
    panel_store(width, acc, terms, ldt, c, rows, max);
}

TARGET512 static void panel_tile_width(long width, long kc, const float *a, const float *b, const float *terms, long ldt,
                                       float *c, long rows, __m512 *max) {
    switch (width) {
    case 4: panel_tile(4, kc, a, b, terms, ldt, c, rows, max); break;
    case 3: panel_tile(3, kc, a, b, terms, ldt, c, rows, max); break;
    case 2: panel_tile(2, kc, a, b, terms, ldt, c, rows, max); break;
    default: panel_tile(1, kc, a, b, terms, ldt, c, rows, max); break;
    }
}

static long slivers(long rows) { return (rows + MR - 1) / MR; }
/// Floats rounded up to whole 64-byte lines, so that each buffer carved from the workspace is aligned.
static size_t lines(size_t floats) { return (floats + 15) & ~(size_t)15; }

/// A pass's queries `q` (`columns` rows `ldq` apart) transposed into `out [depth][NQ]`, the
/// padding columns of its `width` panels zero, then scaled (as `scale * q`: the same bits).
TARGET512 static void load_queries(const float *q, long ldq, long columns, long width, long depth, float scale, float *out) {
    transpose(q, ldq, columns, depth, out, NQ);
    __m512 scaled = _mm512_set1_ps(scale);
    for (long i = 0; i < depth; i++) {
        float *row = out + i * NQ;
        for (long c = columns; c < width * NR; c++) row[c] = 0;
        for (long w = 0; w < width; w++) _mm512_store_ps(row + w * NR, _mm512_mul_ps(scaled, _mm512_load_ps(row + w * NR)));
    }
}

/// The scores `[keys][NQ]` of a pass replaced by their exponentials less each query's maximum
/// (`max`, by panel), and each query's 1 / sum into `inverse`. A query whose every key is masked
/// (terms of -infinity) gets zeros, as the tiled path gives them: its maximum taken as 0 (not
/// -inf - -inf), its 1 / sum as 0.
TARGET512 static void exponentiate(float *scores, long keys, long width, const __m512 max[GROUP], float *inverse) {
    for (long w = 0; w < width; w++) {
        __mmask16 masked = _mm512_cmp_ps_mask(max[w], _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
        __m512 top = _mm512_mask_mov_ps(max[w], masked, _mm512_setzero_ps()), sum = _mm512_setzero_ps();
        for (long j = 0; j < keys; j++) {
            __m512 e = exp_nonpositive512(_mm512_sub_ps(_mm512_load_ps(scores + j * NQ + w * NR), top));
            _mm512_store_ps(scores + j * NQ + w * NR, e);
            sum = _mm512_add_ps(sum, e);
        }
        _mm512_storeu_ps(inverse + w * NR, _mm512_maskz_div_ps((__mmask16)~masked, _mm512_set1_ps(1), sum));
    }
}

/// A pass's `result [value dimension][NQ]`: each query's outputs times its 1 / sum, then
/// transposed into its row of `out`.
TARGET512 static void store_outputs(float *result, long value_depth, long width, const float *inverse, long columns, float *out, long ldo) {
    for (long d = 0; d < value_depth; d++)
        for (long w = 0; w < width; w++)
            _mm512_store_ps(result + d * NQ + w * NR, _mm512_mul_ps(_mm512_load_ps(result + d * NQ + w * NR), _mm512_loadu_ps(inverse + w * NR)));
    transpose(result, NQ, value_depth, columns, out, ldo);
}

TARGET512 void cgemm_attention_head_avx512(long queries, long keys, long depth, long value_depth, float scale,
                                           const float *terms, long ldt, const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                                           float *out, long ldo) {
    if (queries <= 0 || value_depth <= 0) return;
    if (keys <= 0) {
        for (long i = 0; i < queries; i++) memset(out + i * ldo, 0, (size_t)value_depth * sizeof(float));
        return;
    }
    long key_slivers = slivers(keys), value_slivers = slivers(value_depth);
    size_t key_floats = lines((size_t)key_slivers * MR * depth), value_floats = lines((size_t)value_slivers * MR * keys);
    size_t query_floats = lines((size_t)depth * NQ), score_floats = (size_t)keys * NQ;
    float *packed_keys = cgemm_workspace(key_floats + value_floats + query_floats + score_floats + value_slivers * MR * NQ);
    float *packed_values = packed_keys + key_floats;      // [dimension sliver][keys][MR]: v transposed
    float *packed_queries = packed_values + value_floats; // [depth][NQ], scaled
    float *scores = packed_queries + query_floats;        // [keys][NQ]
    float *result = scores + score_floats;                // [value dimension][NQ]

    cgemm_pack_slivers(k, ldk, 0, keys, 0, depth, packed_keys);
    for (long s = 0; s < value_slivers; s++)
        for (long j = 0; j < keys; j++)
            for (long r = 0; r < MR; r++)
                packed_values[((size_t)s * keys + j) * MR + r] = s * MR + r < value_depth ? v[j * ldv + s * MR + r] : 0;

    for (long q0 = 0; q0 < queries; q0 += NQ) {
        long columns = queries - q0 < NQ ? queries - q0 : NQ, width = (columns + NR - 1) / NR;
        load_queries(q + q0 * ldq, ldq, columns, width, depth, scale, packed_queries);
        __m512 max[GROUP];
        for (int w = 0; w < GROUP; w++) max[w] = _mm512_set1_ps(-INFINITY);
        for (long s = 0; s < key_slivers; s++) {
            long rows = keys - s * MR < MR ? keys - s * MR : MR;
            const float *key_terms = terms ? terms + s * MR * ldt + q0 : NULL;
            panel_tile_width(width, depth, packed_keys + s * MR * depth, packed_queries, key_terms, ldt, scores + s * MR * NQ, rows, max);
        }
        float inverse[NQ];
        exponentiate(scores, keys, width, max, inverse);
        // result = v^T p: value dimensions down, the queries across.
        for (long s = 0; s < value_slivers; s++) {
            long rows = value_depth - s * MR < MR ? value_depth - s * MR : MR;
            panel_tile_width(width, keys, packed_values + (size_t)s * MR * keys, scores, NULL, 0, result + s * MR * NQ, rows, NULL);
        }
        store_outputs(result, value_depth, width, inverse, columns, out + q0 * ldo, ldo);
    }
}

TARGET512 long cgemm_softmax_narrow_avx512(float *x, long rows, long width) {
    if (width < 1 || width >= 16) return 0;
    // Sixteen rows are `width` vectors: a row's values are gathered across them (its first at
    // lane r * width), and each lane's row (`owner`) fetches that row's maximum and 1 / sum.
    __m512i first = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                       _mm512_set1_epi32((int)width));
    __m512i owner[16];
    for (long i = 0; i < width; i++) {
        int rows_of[16];
        for (int lane = 0; lane < 16; lane++) rows_of[lane] = (int)((16 * i + lane) / width);
        owner[i] = _mm512_loadu_si512(rows_of);
    }
    const __m512 minus_infinity = _mm512_set1_ps(-INFINITY);
    long done = rows / 16 * 16;
    for (long r0 = 0; r0 < done; r0 += 16) {
        float *block = x + r0 * width;
        __m512 top = minus_infinity;
        // maxps keeps its second operand when the first is NaN: a NaN does not become the maximum.
        for (long t = 0; t < width; t++)
            top = _mm512_max_ps(_mm512_i32gather_ps(_mm512_add_epi32(first, _mm512_set1_epi32((int)t)), block, 4), top);
        // A fully masked row: its maximum taken as 0 (not -inf - -inf), its 1 / sum as 0.
        __mmask16 masked = _mm512_cmp_ps_mask(top, minus_infinity, _CMP_EQ_OQ);
        top = _mm512_mask_mov_ps(top, masked, _mm512_setzero_ps());
        __m512 e[16];
        for (long i = 0; i < width; i++) {
            __m512 v = _mm512_loadu_ps(block + 16 * i);
            e[i] = exp_nonpositive512(_mm512_sub_ps(v, _mm512_permutexvar_ps(owner[i], top)));
            // exp_nonpositive512 stops at exp(-87.3); a masked value's weight is exactly 0.
            e[i] = _mm512_mask_mov_ps(e[i], _mm512_cmp_ps_mask(v, minus_infinity, _CMP_EQ_OQ), _mm512_setzero_ps());
            _mm512_storeu_ps(block + 16 * i, e[i]);
        }
        __m512 sum = _mm512_setzero_ps();
        for (long t = 0; t < width; t++)
            sum = _mm512_add_ps(sum, _mm512_i32gather_ps(_mm512_add_epi32(first, _mm512_set1_epi32((int)t)), block, 4));
        __m512 inverse = _mm512_maskz_div_ps((__mmask16)~masked, _mm512_set1_ps(1), sum);
        for (long i = 0; i < width; i++)
            _mm512_storeu_ps(block + 16 * i, _mm512_mul_ps(e[i], _mm512_permutexvar_ps(owner[i], inverse)));
    }
    return done;
}

// The attention head in bfloat16 (`--precision bfloat16`): both products of `cgemm_attention_head_avx512`
// on `vdpbf16ps`, their operands rounded to bfloat16 as they are packed (q, k and v, and the
// probabilities before they weigh the values); the scores, their softmax and the sums stay float32.

/// Two rows of 16 floats as 16 words of bfloat16 pairs, `lo[j]` in word j's low half and
/// `hi[j]` in its high half.
TARGETBF16 static inline __m512i pair_words(__m512 lo, __m512 hi) {
    // vcvtne2ps2bf16 puts lo's 16 values in the low 16 halves and hi's above; vpermw interleaves.
    static const unsigned short order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                             8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(order), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/// Columns `0..<n` of `b [k, n]` (rows `ldb` apart) packed for `cgemm_packed_product_bf16` as
/// `cgemm_pack_bf16` packs a weight ([pair][NR] panels in blocks of pairs), each panel's pair of
/// rows rounded and interleaved by two instructions; what lies past `n` or `k` is zero.
TARGETBF16 static void pack_columns_bf16(const float *b, long ldb, long n, long k, unsigned *packed) {
    long pairs = (k + 1) / 2, panels = (n + NR - 1) / NR, kc_max = k_block_size(pairs);
    for (long p0 = 0; p0 < pairs; p0 += kc_max) {
        long kc = pairs - p0 < kc_max ? pairs - p0 : kc_max;
        unsigned *block = packed + (size_t)p0 * panels * NR;
        for (long panel = 0; panel < panels; panel++) {
            __mmask16 mask = lanes(n, panel * NR);
            for (long p = 0; p < kc; p++) {
                long row = 2 * (p0 + p);
                const float *x = b + row * ldb + panel * NR;
                __m512 lo = _mm512_maskz_loadu_ps(mask, x), hi = row + 1 < k ? _mm512_maskz_loadu_ps(mask, x + ldb) : _mm512_setzero_ps();
                _mm512_storeu_si512(block + ((size_t)panel * kc + p) * NR, pair_words(lo, hi));
            }
        }
    }
}

void cgemm_sgemm_bf16(long m, long n, long k, const float *a, long lda, const float *b, long ldb, int accumulate, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    // Columns per block: whole panels whose packed pairs take at most B_BLOCK words.
    long pairs = (k + 1) / 2, block = B_BLOCK / pairs / NR * NR;
    if (block < NR) block = NR;
    if (block > n) block = (n + NR - 1) / NR * NR;
    unsigned *packed = (unsigned *)cgemm_workspace_slot(WORKSPACE_OPERANDS, cgemm_packed_count_bf16(block, k));
    for (long j0 = 0; j0 < n; j0 += block) {
        long columns = n - j0 < block ? n - j0 : block;
        pack_columns_bf16(b + j0, ldb, columns, k, packed);
        cgemm_packed_product_bf16(0, m, columns, k, a, lda, packed, 0, (columns + NR - 1) / NR, 1, c + j0, ldc, NULL,
                                  accumulate ? c + j0 : NULL, ldc, CGEMM_IDENTITY);
    }
}

/// `panel_tile` on words: one sliver `a [kc][MR]` of pairs times `width` panels of `b [kc][NQ]` pairs.
TARGETBF16 __attribute__((always_inline)) static inline void panel_tile_bf16(const int width, long kc, const unsigned *a,
                                                                            const unsigned *b, const float *terms, long ldt,
                                                                            float *c, long rows, __m512 *max) {
    __m512 acc[MR][GROUP];
    for (int r = 0; r < MR; r++)
        for (int w = 0; w < GROUP; w++) acc[r][w] = _mm512_setzero_ps();
    _Pragma("clang loop unroll_count(2)")
    for (long p = 0; p < kc; p++, a += MR, b += NQ) {
        __m512bh panel[GROUP];
        for (int w = 0; w < width; w++) panel[w] = (__m512bh)_mm512_loadu_si512(b + w * NR);
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r]);
            for (int w = 0; w < width; w++) acc[r][w] = _mm512_dpbf16_ps(acc[r][w], x, panel[w]);
        }
    }
    panel_store(width, acc, terms, ldt, c, rows, max);
}

TARGETBF16 static void panel_tile_bf16_width(long width, long kc, const unsigned *a, const unsigned *b, const float *terms, long ldt,
                                            float *c, long rows, __m512 *max) {
    switch (width) {
    case 4: panel_tile_bf16(4, kc, a, b, terms, ldt, c, rows, max); break;
    case 3: panel_tile_bf16(3, kc, a, b, terms, ldt, c, rows, max); break;
    case 2: panel_tile_bf16(2, kc, a, b, terms, ldt, c, rows, max); break;
    default: panel_tile_bf16(1, kc, a, b, terms, ldt, c, rows, max); break;
    }
}

/// Rows `0..<2 * pairs` of `rows [.][NQ]` (`width` panels) as `pairs` rows of words `[pairs][NQ]`.
TARGETBF16 static void pack_row_pairs(const float *rows, long pairs, long width, unsigned *out) {
    for (long p = 0; p < pairs; p++)
        for (long w = 0; w < width; w++)
            _mm512_storeu_si512(out + p * NQ + w * NR, pair_words(_mm512_load_ps(rows + 2 * p * NQ + w * NR),
                                                                  _mm512_load_ps(rows + (2 * p + 1) * NQ + w * NR)));
}

TARGETBF16 void cgemm_attention_head_bf16(long queries, long keys, long depth, long value_depth, float scale,
                                          const float *terms, long ldt, const float *q, long ldq, const float *k, long ldk,
                                          const float *v, long ldv, float *out, long ldo) {
    if (queries <= 0 || value_depth <= 0) return;
    if (keys <= 0) {
        for (long i = 0; i < queries; i++) memset(out + i * ldo, 0, (size_t)value_depth * sizeof(float));
        return;
    }
    long depth_pairs = (depth + 1) / 2, key_pairs = (keys + 1) / 2;
    long key_slivers = slivers(keys), value_slivers = slivers(value_depth);
    size_t key_words = lines((size_t)key_slivers * MR * depth_pairs), value_words = lines((size_t)value_slivers * MR * key_pairs);
    size_t query_floats = lines((size_t)2 * depth_pairs * NQ), query_words = lines((size_t)depth_pairs * NQ);
    size_t score_floats = (size_t)2 * key_pairs * NQ, score_words = (size_t)key_pairs * NQ;
    float *buffer = cgemm_workspace(key_words + value_words + query_floats + query_words + score_floats + score_words +
                                    value_slivers * MR * NQ);
    unsigned *packed_keys = (unsigned *)buffer;                           // [key sliver][depth pair][MR]
    unsigned *packed_values = packed_keys + key_words;                    // [dimension sliver][key pair][MR]: v transposed
    float *queries_t = (float *)(packed_values + value_words);            // [depth, padded to pairs][NQ], scaled
    unsigned *packed_queries = (unsigned *)(queries_t + query_floats);    // [depth pair][NQ]
    float *scores = (float *)(packed_queries + query_words);             // [keys, padded to pairs][NQ]
    unsigned *packed_scores = (unsigned *)(scores + score_floats);        // [key pair][NQ]
    float *result = (float *)(packed_scores + score_words);              // [value dimension][NQ]

    pack_slivers_bf16(k, ldk, 0, keys, 0, depth_pairs, depth, packed_keys);
    for (long s = 0; s < value_slivers; s++)
        for (long p = 0; p < key_pairs; p++)
            for (long r = 0; r < MR; r++) {
                long d = s * MR + r, j = 2 * p;
                unsigned low = d < value_depth ? bfloat16(v[j * ldv + d]) : 0;
                unsigned high = d < value_depth && j + 1 < keys ? bfloat16(v[(j + 1) * ldv + d]) : 0;
                packed_values[((size_t)s * key_pairs + p) * MR + r] = low | high << 16;
            }
    // The pair of an odd count's last row: zero, adding nothing.
    if (depth % 2) memset(queries_t + depth * NQ, 0, NQ * sizeof(float));
    if (keys % 2) memset(scores + keys * NQ, 0, NQ * sizeof(float));

    for (long q0 = 0; q0 < queries; q0 += NQ) {
        long columns = queries - q0 < NQ ? queries - q0 : NQ, width = (columns + NR - 1) / NR;
        load_queries(q + q0 * ldq, ldq, columns, width, depth, scale, queries_t);
        pack_row_pairs(queries_t, depth_pairs, width, packed_queries);
        __m512 max[GROUP];
        for (int w = 0; w < GROUP; w++) max[w] = _mm512_set1_ps(-INFINITY);
        for (long s = 0; s < key_slivers; s++) {
            long rows = keys - s * MR < MR ? keys - s * MR : MR;
            const float *key_terms = terms ? terms + s * MR * ldt + q0 : NULL;
            panel_tile_bf16_width(width, depth_pairs, packed_keys + s * MR * depth_pairs, packed_queries, key_terms, ldt,
                                  scores + s * MR * NQ, rows, max);
        }
        float inverse[NQ];
        exponentiate(scores, keys, width, max, inverse);
        pack_row_pairs(scores, key_pairs, width, packed_scores);
        for (long s = 0; s < value_slivers; s++) {
            long rows = value_depth - s * MR < MR ? value_depth - s * MR : MR;
            panel_tile_bf16_width(width, key_pairs, packed_values + (size_t)s * MR * key_pairs, packed_scores, NULL, 0,
                                  result + s * MR * NQ, rows, NULL);
        }
        store_outputs(result, value_depth, width, inverse, columns, out + q0 * ldo, ldo);
    }
}

#else

void cgemm_product_in_place_avx512(long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                                   int accumulate, float *c, long ldc) {
    abort();  // never called: segwatch uses it only on x86-64 with AVX-512
}

void cgemm_packed_product_avx512(long row_begin, long row_end, long n, long k, const float *a, long lda,
                                 const float *packed, long panel_begin, long panel_end,
                                 float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                                 enum cgemm_activation activation) {
    abort();  // never called: segwatch packs weights only on x86-64
}

void cgemm_attention_head_avx512(long queries, long keys, long depth, long value_depth, float scale,
                                 const float *terms, long ldt, const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                                 float *out, long ldo) {
    abort();  // never called: segwatch uses it only on x86-64 with AVX-512
}

void cgemm_attention_head_bf16(long queries, long keys, long depth, long value_depth, float scale,
                               const float *terms, long ldt, const float *q, long ldq, const float *k, long ldk,
                               const float *v, long ldv, float *out, long ldo) {
    abort();  // never called: segwatch uses it only on x86-64 with AVX512_BF16
}

long cgemm_softmax_narrow_avx512(float *x, long rows, long width) {
    abort();  // never called: segwatch uses it only on x86-64 with AVX-512
}

void cgemm_sgemm_bf16(long m, long n, long k, const float *a, long lda, const float *b, long ldb, int accumulate, float *c, long ldc) {
    abort();  // never called: segwatch uses it only on x86-64 with AVX512_BF16
}

size_t cgemm_packed_count_bf16(long n, long k) { abort(); }
void cgemm_pack_bf16(const float *weight, long n, long k, unsigned *packed) { abort(); }  // never called: x86-64 only

void cgemm_packed_product_bf16(long row_begin, long row_end, long n, long k, const float *a, long lda,
                               const unsigned *packed, long panel_begin, long panel_end,
                               float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                               enum cgemm_activation activation) {
    abort();  // never called: segwatch uses it only on x86-64 with AVX512_BF16
}

#endif
