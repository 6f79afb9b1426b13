#include "ccpuid.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xcr0(void) {
    unsigned low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((unsigned long long)high << 32) | low;
}

int ccpuid_supports_x86_64_v3(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned fma = 1u << 12, movbe = 1u << 22, osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((c & (fma | movbe | osxsave | avx | f16c)) != (fma | movbe | osxsave | avx | f16c)) return 0;
    // The OS must save the XMM and YMM registers on a context switch (XCR0 bits 1 and 2).
    if ((xcr0() & 6u) != 6u) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned bmi1 = 1u << 3, avx2 = 1u << 5, bmi2 = 1u << 8;
    if ((b & (bmi1 | avx2 | bmi2)) != (bmi1 | avx2 | bmi2)) return 0;
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d)) return 0;
    const unsigned lzcnt = 1u << 5;
    return (c & lzcnt) != 0;
}

int ccpuid_supports_x86_64_v4(void) {
    if (!ccpuid_supports_x86_64_v3()) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned f = 1u << 16, dq = 1u << 17, cd = 1u << 28, bw = 1u << 30, vl = 1u << 31;
    if ((b & (f | dq | cd | bw | vl)) != (f | dq | cd | bw | vl)) return 0;
    // ... and the opmask registers and all 32 ZMM registers (XCR0 bits 5, 6 and 7): a kernel
    // or hypervisor may hide them even where CPUID lists AVX-512.
    return (xcr0() & 0xE6u) == 0xE6u;
}

int ccpuid_supports_avx512_bf16(void) {
    if (!ccpuid_supports_x86_64_v4()) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;  // a: the leaf's last subleaf
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a & (1u << 5)) != 0;
}

void ccpuid_brand(char brand[49]) {
    unsigned *words = (unsigned *)brand;
    memset(brand, 0, 49);
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000004) return;
    for (unsigned leaf = 0; leaf < 3; leaf++)
        __get_cpuid(0x80000002 + leaf, &words[4 * leaf], &words[4 * leaf + 1], &words[4 * leaf + 2], &words[4 * leaf + 3]);
}
#else
void ccpuid_brand(char brand[49]) { memset(brand, 0, 49); }
int ccpuid_supports_x86_64_v3(void) { return 0; }
int ccpuid_supports_x86_64_v4(void) { return 0; }
int ccpuid_supports_avx512_bf16(void) { return 0; }
#endif
