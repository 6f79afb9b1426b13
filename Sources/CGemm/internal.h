// What the product (cgemm.c) and attention (attention.c) share; not part of the module's API.
#ifndef CGEMM_INTERNAL_H
#define CGEMM_INTERNAL_H

#include <stddef.h>

enum {
    MR = 6,  // rows per register tile
    NR = 16, // columns per tile: a weight's panel of outputs
    KC_MAX = 768,     // inputs per block: a panel's block, 48 KB, streams from L2
    A_BLOCK = 163840, // floats of packed activations per block (640 KB: blocks within Zen 3's 512 KB L2 measured no faster)
    B_BLOCK = 196608, // floats (or bfloat16 pairs) of B the general products pack per block of columns (768 KB: inside L2)
};

/// The size of the blocks `k` inputs are split into: equal, at most KC_MAX. Packing and both
/// products use it, so a weight packed once serves either product.
static inline long k_block_size(long k) {
    long blocks = (k + KC_MAX - 1) / KC_MAX;
    return (k + blocks - 1) / blocks;
}

/// The tiles of `m` rows in each row block: blocks of equal size, whole tiles, whose packed
/// activations (`kc_max` inputs a row) fit A_BLOCK. Every product blocks its rows by it.
static inline long row_block_tiles(long m, long kc_max) {
    long tiles = (m + MR - 1) / MR, tiles_max = A_BLOCK / (kc_max * MR);
    if (tiles_max < 1) tiles_max = 1;
    long row_blocks = (tiles + tiles_max - 1) / tiles_max;
    return (tiles + row_blocks - 1) / row_blocks;
}

#define TARGET __attribute__((target("avx2,fma")))
/// x86-64-v4's AVX-512 subset (what `ccpuid_supports_x86_64_v4` checks).
#define TARGET512 __attribute__((target("avx2,fma,avx512f,avx512cd,avx512bw,avx512dq,avx512vl")))

/// The buffers each thread keeps: one per use that can be live at once.
enum cgemm_workspace {
    WORKSPACE_SLIVERS = 0,  // the products' packed activations; attention's packed heads
    WORKSPACE_OPERANDS = 1, // `cgemm_sgemm_avx512`'s packed B and transposed A
    WORKSPACES = 2,
};

/// A buffer of at least `floats`, 64-byte aligned, one per thread and slot and kept for the
/// thread's life; a larger request replaces it (the previous pointer is then invalid).
float *cgemm_workspace_slot(enum cgemm_workspace slot, size_t floats);

/// `cgemm_workspace_slot(WORKSPACE_SLIVERS, floats)`.
float *cgemm_workspace(size_t floats);

/// Rows `r0..<r1` of `a` (rows `lda` apart), inputs `k0..<k0 + kc`, as slivers `[tile][kc][MR]`:
/// a tile's six rows side by side, so that the tile's loop walks one pointer for them; the
/// rows past `r1` in the last sliver are zero. Written in order, reading six rows at a time.
void cgemm_pack_slivers(const float *a, long lda, long r0, long r1, long k0, long kc, float *out);

/// `c[m, n] = alpha * a b`, plus `c` itself when `accumulate`, on the AVX-512 tiles reading `b
/// [k, n]` (rows `ldb` floats apart) in place, unpacked: for `n` a multiple of NR.
void cgemm_product_in_place_avx512(long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                                   int accumulate, float *c, long ldc);

#if defined(__x86_64__)
#include <immintrin.h>

#define TILE_ROW(r)                                                                           \
    x = _mm256_broadcast_ss(sliver + r);                                                      \
    c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0);                                                \
    c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1);

/// The 6x16 register tile's loop, shared by the product's and attention's tiles: declares the
/// twelve accumulators `c00, c01, ..., c50, c51` (row, half) and adds one sliver `a [kc][MR]`
/// times one panel `b [kc][NR]` into them. Named variables, not an array, and a macro, not a
/// function, so that the compiler keeps all twelve in registers for the caller's epilogue.
#define TILE_ACCUMULATE(kc, a, b)                                                             \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;  \
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;                  \
    {                                                                                         \
        const float *sliver = (a), *panel = (b);                                              \
        _Pragma("clang loop unroll_count(4)")                                                 \
        for (long i = 0; i < (kc); i++, sliver += MR, panel += NR) {                          \
            __m256 b0 = _mm256_load_ps(panel), b1 = _mm256_load_ps(panel + 8), x;             \
            TILE_ROW(0) TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5)           \
        }                                                                                     \
    }
#endif

#endif
