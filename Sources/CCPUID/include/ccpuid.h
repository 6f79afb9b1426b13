#ifndef CCPUID_H
#define CCPUID_H

/// 1 when this CPU and OS can run code compiled for x86-64-v3 (AVX, AVX2, FMA, F16C, BMI1/2,
/// LZCNT, MOVBE, with the YMM state enabled by the OS), else 0. Always 0 off x86-64.
int ccpuid_supports_x86_64_v3(void);

/// 1 when this CPU and OS can also run code compiled for x86-64-v4 (AVX-512 F, CD, BW, DQ and
/// VL, with the opmask and ZMM state enabled by the OS), else 0. Always 0 off x86-64.
int ccpuid_supports_x86_64_v4(void);

/// 1 when this CPU and OS can also run AVX512_BF16 (bfloat16 dot products: `vdpbf16ps`), with
/// x86-64-v4, else 0.
int ccpuid_supports_avx512_bf16(void);

/// The CPU's brand string (CPUID leaves 0x80000002-4, as /proc/cpuinfo's "model name"), NUL
/// terminated; empty where the CPU has none.
void ccpuid_brand(char brand[49]);

/// The spin-wait hint (x86 PAUSE): a waiting loop yields the core's pipeline to its SMT sibling
/// and leaves the loop without a memory-order mis-speculation. Nothing elsewhere.
static inline void ccpuid_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
