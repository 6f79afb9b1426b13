// Float math for the products' epilogues and attention's softmax, on eight lanes (AVX2) and
// sixteen (AVX-512): the same approximations as the Swift kernels (SegwatchKernels/VectorMath.swift),
// lane for lane the same operations in both widths, so that an activation fused into a product
// agrees with the one applied on its own to within an ulp or two, whichever build runs.
#ifndef CGEMM_VECTOR_MATH_H
#define CGEMM_VECTOR_MATH_H

#include <immintrin.h>

#include "internal.h"

/// The range reduction and polynomial of Cephes' `expf`: `e^x = p(r) 2^n`, `n = round(x log2 e)`,
/// for `x` already within [-87.34, 88.73]; `shifted` gets `n` in its low mantissa bits.
TARGET static inline __m256 exp_mantissa(__m256 x, __m256 *shifted) {
    __m256 magic = _mm256_set1_ps(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
    *shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), magic);
    __m256 n = _mm256_sub_ps(*shifted, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_fmadd_ps(r, _mm256_set1_ps(1.9875691500e-4f), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    return _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
}

/// `e^x` for softmax's `x <= 0`, within 2 ulp; below -87.3, where `e^x` leaves the normal
/// floats, it returns `e^-87.3` (nothing next to the maximum's 1). NaN stays NaN.
TARGET static inline __m256 exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.33654f), x);  // returns x where it is NaN
    __m256 shifted, p = exp_mantissa(x, &shifted);
    // 2^n from n's bits: n >= -126 after the clamp, so one power is a normal float.
    __m256i bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000 - 127));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23)));
}

/// `e^x` over the float range, within 2 ulp of `expf`: 0 below -87.3, infinity above 88.7.
TARGET static inline __m256 exp256(__m256 x) {
    __m256 low = _mm256_set1_ps(-87.33654f), high = _mm256_set1_ps(88.72283f);
    __m256 shifted, p = exp_mantissa(_mm256_min_ps(high, _mm256_max_ps(low, x)), &shifted);
    // 2^n in two halves: n reaches 128 and -126, where one power alone would overflow or fall
    // into the denormals.
    __m256i n = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256i half = _mm256_srai_epi32(n, 1), bias = _mm256_set1_epi32(127);
    __m256 first = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 second = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, half), bias), 23));
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, first), second);
    result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, low, _CMP_LT_OQ));
    return _mm256_blendv_ps(result, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, high, _CMP_GT_OQ));
}

/// `erf(x)`: the odd/even rational approximation on [-4, 4] that Eigen and XLA use for float
/// (outside it erf is ±1 in float).
TARGET static inline __m256 erf256(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(4), _mm256_max_ps(_mm256_set1_ps(-4), x));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f), _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(p, x);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f), _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(p, q);
}

/// `nn.GELU()`: `x/2 * (1 + erf(x/sqrt 2))`.
TARGET static inline __m256 gelu256(__m256 x) {
    __m256 e = erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1), e));
}

/// CLIP's `x * sigmoid(1.702 x)`, as `x / (1 + e^(-1.702 x))`.
TARGET static inline __m256 quick_gelu256(__m256 x) {
    __m256 e = exp256(_mm256_mul_ps(_mm256_set1_ps(-1.702f), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1), e));
}

/// `exp_mantissa` on sixteen lanes.
TARGET512 static inline __m512 exp_mantissa512(__m512 x, __m512 *shifted) {
    __m512 magic = _mm512_set1_ps(12582912.f);
    *shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504f), magic);
    __m512 n = _mm512_sub_ps(*shifted, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(1.9875691500e-4f), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    return _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
}

/// `exp_nonpositive` on sixteen lanes.
TARGET512 static inline __m512 exp_nonpositive512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.33654f), x);
    __m512 shifted, p = exp_mantissa512(x, &shifted);
    __m512i bits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000 - 127));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(bits, 23)));
}

/// `exp256` on sixteen lanes.
TARGET512 static inline __m512 exp512(__m512 x) {
    __m512 low = _mm512_set1_ps(-87.33654f), high = _mm512_set1_ps(88.72283f);
    __m512 shifted, p = exp_mantissa512(_mm512_min_ps(high, _mm512_max_ps(low, x)), &shifted);
    __m512i n = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    __m512i half = _mm512_srai_epi32(n, 1), bias = _mm512_set1_epi32(127);
    __m512 first = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(half, bias), 23));
    __m512 second = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(n, half), bias), 23));
    __m512 result = _mm512_mul_ps(_mm512_mul_ps(p, first), second);
    result = _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, low, _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, high, _CMP_GT_OQ), _mm512_set1_ps(__builtin_inff()));
}

/// `erf256` on sixteen lanes.
TARGET512 static inline __m512 erf512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(4), _mm512_max_ps(_mm512_set1_ps(-4), x));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.72614225801306e-10f), _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(p, x);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(-1.45660718464996e-05f), _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

/// `gelu256` on sixteen lanes.
TARGET512 static inline __m512 gelu512(__m512 x) {
    __m512 e = erf512(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1), e));
}

/// `quick_gelu256` on sixteen lanes.
TARGET512 static inline __m512 quick_gelu512(__m512 x) {
    __m512 e = exp512(_mm512_mul_ps(_mm512_set1_ps(-1.702f), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1), e));
}

#endif
