#ifndef CCPUID_H
#define CCPUID_H

/// 1 when this CPU and OS can run code compiled for x86-64-v3 (AVX, AVX2, FMA, F16C, BMI1/2,
/// LZCNT, MOVBE, with the YMM state enabled by the OS), else 0. Always 0 off x86-64.
int ccpuid_supports_x86_64_v3(void);

#endif
