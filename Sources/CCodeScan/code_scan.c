// The first pass of a track search: int8 codes against an int8 query. Memory-bound (a code is
// read once per query), so the kernels widen to int16 and multiply-add pairs into int32
// (vpmaddwd), which keeps up with memory on both AVX2 and AVX-512.
#include "code_scan.h"

#include <immintrin.h>

static int32_t dot_scalar(const int8_t *a, const int8_t *b, long n) {
    int32_t sum = 0;
    for (long d = 0; d < n; d++) sum += (int32_t)a[d] * (int32_t)b[d];
    return sum;
}

__attribute__((target("avx2")))
static void dots_avx2(const int8_t *codes, long rows, long dimension, const int8_t *query, int32_t *scores) {
    long vectorized = dimension & ~15L;
    for (long i = 0; i < rows; i++) {
        const int8_t *row = codes + i * dimension;
        __m256i sum = _mm256_setzero_si256();
        for (long d = 0; d < vectorized; d += 16) {
            __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + d)));
            __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(query + d)));
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(a, b));
        }
        __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
        half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xB1));
        scores[i] = _mm_cvtsi128_si32(half) + dot_scalar(row + vectorized, query + vectorized, dimension - vectorized);
    }
}

__attribute__((target("avx512f,avx512bw")))
static void dots_avx512(const int8_t *codes, long rows, long dimension, const int8_t *query, int32_t *scores) {
    long vectorized = dimension & ~31L;
    for (long i = 0; i < rows; i++) {
        const int8_t *row = codes + i * dimension;
        __m512i sum = _mm512_setzero_si512();
        for (long d = 0; d < vectorized; d += 32) {
            __m512i a = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(row + d)));
            __m512i b = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(query + d)));
            sum = _mm512_add_epi32(sum, _mm512_madd_epi16(a, b));
        }
        scores[i] = _mm512_reduce_add_epi32(sum) + dot_scalar(row + vectorized, query + vectorized, dimension - vectorized);
    }
}

void code_scan_dots(const int8_t *codes, long rows, long dimension, const int8_t *query, int32_t *scores) {
    // The OS must save the wide registers too; __builtin_cpu_supports checks both.
    if (__builtin_cpu_supports("avx512bw")) {
        dots_avx512(codes, rows, dimension, query, scores);
    } else if (__builtin_cpu_supports("avx2")) {
        dots_avx2(codes, rows, dimension, query, scores);
    } else {
        for (long i = 0; i < rows; i++) scores[i] = dot_scalar(codes + i * dimension, query, dimension);
    }
}
