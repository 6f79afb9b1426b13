// What the product (cgemm.c) and attention (attention.c) share; not part of the module's API.
#ifndef CGEMM_INTERNAL_H
#define CGEMM_INTERNAL_H

#include <stddef.h>

enum {
    MR = 6,  // rows per register tile
    NR = 16, // columns per tile: a weight's panel of outputs
};

#define TARGET __attribute__((target("avx2,fma")))

/// A buffer of at least `floats`, 64-byte aligned, one per thread and kept for the thread's
/// life; a larger request replaces it (the previous pointer is then invalid).
float *cgemm_workspace(size_t floats);

/// Rows `r0..<r1` of `a` (rows `lda` apart), inputs `k0..<k0 + kc`, as slivers `[tile][kc][MR]`:
/// a tile's six rows side by side, so that the tile's loop walks one pointer for them; the
/// rows past `r1` in the last sliver are zero. Written in order, reading six rows at a time.
void cgemm_pack_slivers(const float *a, long lda, long r0, long r1, long k0, long kc, float *out);

#endif
