// The product of activations with a linear layer's weight packed once, at load: a 6x16 register
// tile (twelve accumulators of 8 floats, two weight vectors, one broadcast per row), as in BLIS's
// Haswell kernel. The weight is packed in the order the loops read it, so a call packs only the
// activations (at the 197-token products of a ViT, OpenBLAS repacks the weight on every call);
// they go into six-row slivers so that the tile's loop walks two pointers (reading six rows in
// place, the compilers keep the row pointers in memory and the loop is a quarter slower).
#include "cgemm.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t cgemm_packed_count(long n, long k) { return (size_t)((n + NR - 1) / NR) * NR * (size_t)k; }

#if defined(__x86_64__)
#include "transpose.h"
#endif

/// One panel's block: `kc` inputs of outputs `row0..<row0 + NR` (those past `n` zero) into
/// `out [kc][NR]`. The two layouts the products meet are copied a vector at a time (the
/// general loop, an element at a time, took a fifth of the SAM decoder's time). Called only
/// where the CPU has AVX2, as every packing is.
static void pack_panel(const float *weight, long n, long row0, long k0, long kc, long n_stride, long k_stride, float *out) {
    if (n_stride == 1 && row0 + NR <= n) {
        // Outputs side by side in memory (B as [k, n]): each input's NR outputs are one copy.
        for (long i = 0; i < kc; i++) memcpy(out + i * NR, weight + row0 + (k0 + i) * k_stride, NR * sizeof(float));
    } else if (k_stride == 1 && row0 + NR <= n) {
        // Each output's inputs contiguous (a linear weight [n, k], B transposed): a transpose,
        // by 8x8 blocks in registers (the SAM decoder's keys, [4096, 256] per prompt,
        // transposed an element at a time took a third of their product's time).
#if defined(__x86_64__)
        transpose(weight + row0 * n_stride + k0, n_stride, NR, kc, out, NR);
#else
        for (long j = 0; j < NR; j++) {
            const float *line = weight + (row0 + j) * n_stride + k0;
            for (long i = 0; i < kc; i++) out[i * NR + j] = line[i];
        }
#endif
    } else {
        for (long i = 0; i < kc; i++)
            for (long j = 0; j < NR; j++) {
                long row = row0 + j;
                out[i * NR + j] = row < n ? weight[row * n_stride + (k0 + i) * k_stride] : 0;
            }
    }
}

void cgemm_pack_strided(const float *weight, long n, long k, long n_stride, long k_stride, float *packed) {
    long panels = (n + NR - 1) / NR, kc_max = k_block_size(k);
    for (long k0 = 0; k0 < k; k0 += kc_max) {
        long kc = k - k0 < kc_max ? k - k0 : kc_max;
        float *block = packed + (size_t)k0 * panels * NR;
        for (long p = 0; p < panels; p++) pack_panel(weight, n, p * NR, k0, kc, n_stride, k_stride, block + (size_t)p * kc * NR);
    }
}

#if defined(__x86_64__)
#include "vector_math.h"

/// `cgemm_workspace`'s buffers: a thread's array of WORKSPACES pointers.
static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;
static void free_workspaces(void *slots) {
    for (int i = 0; i < WORKSPACES; i++) free(((size_t **)slots)[i]);
    free(slots);
}
static void make_workspace_key(void) { pthread_key_create(&workspace_key, free_workspaces); }

float *cgemm_workspace_slot(enum cgemm_workspace slot, size_t floats) {
    pthread_once(&workspace_once, make_workspace_key);
    size_t **slots = pthread_getspecific(workspace_key);
    if (!slots) {
        slots = calloc(WORKSPACES, sizeof(size_t *));
        if (!slots) abort();
        pthread_setspecific(workspace_key, slots);
    }
    size_t *buffer = slots[slot];
    if (buffer && buffer[0] >= floats) return (float *)(buffer + 8);
    free(buffer);
    // 64 bytes of header (the capacity) keep the floats on a cache line boundary.
    buffer = aligned_alloc(64, 64 + ((floats * sizeof(float) + 63) & ~(size_t)63));
    if (!buffer) abort();
    buffer[0] = floats;
    slots[slot] = buffer;
    return (float *)(buffer + 8);
}

float *cgemm_workspace(size_t floats) { return cgemm_workspace_slot(WORKSPACE_SLIVERS, floats); }

void cgemm_pack_slivers(const float *a, long lda, long r0, long r1, long k0, long kc, float *out) {
    for (long i0 = r0; i0 < r1; i0 += MR) {
        if (r1 - i0 < MR) {
            // The last, partial sliver: the rows past r1 are zero.
            for (long i = 0; i < kc; i++, out += MR)
                for (long r = 0; r < MR; r++) out[r] = i0 + r < r1 ? a[(size_t)(i0 + r) * lda + k0 + i] : 0;
            break;
        }
        const float *rows[MR];
        for (long r = 0; r < MR; r++) rows[r] = a + (size_t)(i0 + r) * lda + k0;
        long i = 0;
#if defined(__x86_64__)
        // Eight inputs at a time through registers (the SAM decoder's per-prompt products pack
        // 4096 x 256 activations for 56 outputs: an element at a time, packing took as long as
        // a third of the product).
        for (; i + 8 <= kc; i += 8, out += 8 * MR) interleave6x8(rows, i, out);
#endif
        for (; i < kc; i++, out += MR) {
            out[0] = rows[0][i];
            out[1] = rows[1][i];
            out[2] = rows[2][i];
            out[3] = rows[3][i];
            out[4] = rows[4][i];
            out[5] = rows[5][i];
        }
    }
}

/// The tile's epilogue for row `r`: alpha, then the start (`c` when accumulating, else the
/// residual) and the bias, then the activation (given only with the last block of inputs).
#define STORE(r)                                                                              \
    if (rows > r) {                                                                           \
        float *q = c + r * ldc;                                                               \
        const float *start = accumulate ? q : residual ? residual + r * ldr : NULL;           \
        if (alpha != 1) {                                                                     \
            c##r##0 = _mm256_mul_ps(_mm256_set1_ps(alpha), c##r##0);                           \
            c##r##1 = _mm256_mul_ps(_mm256_set1_ps(alpha), c##r##1);                           \
        }                                                                                     \
        float spill[NR];                                                                      \
        if (columns < NR) {                                                                   \
            /* c, start and bias have only `columns` values: added lane by lane, in the  */  \
            /* order of the whole panels' vectors.                                         */  \
            _mm256_storeu_ps(spill, c##r##0);                                                 \
            _mm256_storeu_ps(spill + 8, c##r##1);                                             \
            for (long j = 0; j < columns; j++) {                                              \
                if (start) spill[j] += start[j];                                              \
                if (bias) spill[j] += bias[j];                                                \
            }                                                                                 \
            c##r##0 = _mm256_loadu_ps(spill);                                                 \
            c##r##1 = _mm256_loadu_ps(spill + 8);                                             \
        } else {                                                                              \
            if (start) {                                                                      \
                c##r##0 = _mm256_add_ps(_mm256_loadu_ps(start), c##r##0);                      \
                c##r##1 = _mm256_add_ps(_mm256_loadu_ps(start + 8), c##r##1);                  \
            }                                                                                 \
            if (bias) {                                                                       \
                c##r##0 = _mm256_add_ps(_mm256_loadu_ps(bias), c##r##0);                       \
                c##r##1 = _mm256_add_ps(_mm256_loadu_ps(bias + 8), c##r##1);                   \
            }                                                                                 \
        }                                                                                     \
        if (activation == CGEMM_QUICK_GELU) {                                                 \
            c##r##0 = quick_gelu256(c##r##0);                                                 \
            c##r##1 = quick_gelu256(c##r##1);                                                 \
        } else if (activation == CGEMM_GELU) {                                                \
            c##r##0 = gelu256(c##r##0);                                                       \
            c##r##1 = gelu256(c##r##1);                                                       \
        }                                                                                     \
        if (columns == NR) {                                                                  \
            _mm256_storeu_ps(q, c##r##0);                                                     \
            _mm256_storeu_ps(q + 8, c##r##1);                                                 \
        } else {                                                                              \
            _mm256_storeu_ps(spill, c##r##0);                                                 \
            _mm256_storeu_ps(spill + 8, c##r##1);                                             \
            for (long j = 0; j < columns; j++) q[j] = spill[j];                               \
        }                                                                                     \
    }

/// `c[0..<rows][0..<columns] = activation(alpha * a * b + start)` for one sliver `a [kc][MR]` and
/// panel block `b [kc][NR]`, where `start` is `c` itself when accumulating, else `residual` (rows
/// `ldr` apart) plus `bias`, each when given.
TARGET static void tile(long kc, const float *a, const float *b, float *c, long ldc, long rows, long columns,
                        float alpha, int accumulate, const float *bias, const float *residual, long ldr,
                        enum cgemm_activation activation) {
    for (long r = 0; r < rows; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    TILE_ACCUMULATE(kc, a, b)
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
}

TARGET void cgemm_packed_product(long row_begin, long row_end, long n, long k, const float *a, long lda,
                                 const float *packed, long panel_begin, long panel_end,
                                 float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                                 enum cgemm_activation activation) {
    long m = row_end - row_begin;
    if (m <= 0 || panel_end <= panel_begin || k <= 0) return;
    long panels = (n + NR - 1) / NR, kc_max = k_block_size(k);
    long block_tiles = row_block_tiles(m, kc_max);
    float *sliver = cgemm_workspace((size_t)block_tiles * MR * kc_max);
    for (long k0 = 0; k0 < k; k0 += kc_max) {
        long kc = k - k0 < kc_max ? k - k0 : kc_max;
        const float *weights = packed + (size_t)k0 * panels * NR;
        int first = k0 == 0, last = k0 + kc == k;
        for (long r0 = row_begin; r0 < row_end; r0 += block_tiles * MR) {
            long r1 = r0 + block_tiles * MR < row_end ? r0 + block_tiles * MR : row_end;
            cgemm_pack_slivers(a, lda, r0, r1, k0, kc, sliver);
            long block_tiles_here = (r1 - r0 + MR - 1) / MR;
            // The next panel's block is fetched a share per tile while this one is in use.
            long lines = kc * NR * (long)sizeof(float) / 64, per_tile = (lines + block_tiles_here - 1) / block_tiles_here;
            for (long p = panel_begin; p < panel_end; p++) {
                const float *b = weights + (size_t)p * kc * NR;
                const char *next = (const char *)(b + kc * NR);
                long columns = n - p * NR < NR ? n - p * NR : NR;
                for (long t = 0; t < block_tiles_here; t++) {
                    if (p + 1 < panel_end)
                        for (long l = t * per_tile; l < (t + 1) * per_tile && l < lines; l++)
                            _mm_prefetch(next + l * 64, _MM_HINT_T0);
                    long row = r0 + t * MR, rows = r1 - row < MR ? r1 - row : MR;
                    tile(kc, sliver + (size_t)t * MR * kc, b, c + (size_t)row * ldc + p * NR, ldc, rows, columns, alpha, !first,
                         first && bias ? bias + p * NR : NULL,
                         first && residual ? residual + (size_t)row * ldr + p * NR : NULL, ldr,
                         last ? activation : CGEMM_IDENTITY);
                }
            }
        }
    }
}

#else

void cgemm_packed_product(long row_begin, long row_end, long n, long k, const float *a, long lda,
                          const float *packed, long panel_begin, long panel_end,
                          float alpha, float *c, long ldc, const float *bias, const float *residual, long ldr,
                          enum cgemm_activation activation) {
    abort();  // never called: segwatch packs weights only on x86-64 with AVX2
}

#endif
