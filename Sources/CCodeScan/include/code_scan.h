#ifndef CODE_SCAN_H
#define CODE_SCAN_H

#include <stdint.h>

/// The integer dot products of `rows` int8 codes (`dimension` each, `codes` row-major) with one
/// int8 query: `scores[i] = sum_d codes[i * dimension + d] * query[d]`. Exact (int32 sums of
/// at most 65,536 products of magnitude 127 * 127 cannot overflow). Uses AVX-512BW or AVX2
/// where the CPU has them.
void code_scan_dots(const int8_t *codes, long rows, long dimension, const int8_t *query, int32_t *scores);

#endif
