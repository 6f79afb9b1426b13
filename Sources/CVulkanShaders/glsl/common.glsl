// Shared by every kernel: buffers are reached by device address (push constants carry them),
// so a dispatch binds nothing but its pipeline.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_scalar_block_layout : require

layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Floats { float v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Uints { uint v[]; };

// Elementwise kernels walk their range in a grid-stride loop: the host dispatches at most
// 65535 groups (the minimum every device allows) however large the tensor.
#define GRID_STRIDE(i, count) \
    for (uint i = gl_GlobalInvocationID.x; i < (count); i += gl_NumWorkGroups.x * gl_WorkGroupSize.x)

// A masked score: finite, because without the float-controls execution modes a driver may
// assume no infinities. exp2ulp of it minus any real score is 0.
const float MASKED = -3.402823466e38;

// Activation codes, as Swift's Activation (VulkanKernels.swift) numbers them.
const uint ACT_NONE = 0, ACT_GELU = 1, ACT_GELU_TANH = 2, ACT_QUICK_GELU = 3, ACT_RELU = 4, ACT_SIGMOID = 5;

// e^x as the CPU kernels compute it (SegwatchKernels' VectorMath: Cephes' expf polynomial after
// splitting off a power of two, within 2 ulp): GLSL's exp may be off by 3 + 2|x| ulp, which
// softmax and attention would carry into every score.
float exp2ulp(float x) {
    if (x < -87.33654) return 0.0;
    if (x > 88.72283) return 1.0 / 0.0;
    float n = roundEven(x * 1.44269504);
    precise float r = x - n * 0.693359375;
    r = r + n * 2.1219444e-4;
    float p = fma(r, 1.98756915e-4, 1.39819995e-3);
    p = fma(p, r, 8.3334519e-3);
    p = fma(p, r, 4.16657959e-2);
    p = fma(p, r, 1.66666655e-1);
    p = fma(p, r, 5.0000001e-1);
    p = fma(p * r, r, r + 1.0);
    // 2^n in two halves: n reaches 128 and -126, where one power alone would overflow.
    int whole = int(n), first = whole >> 1;
    return p * intBitsToFloat((first + 127) << 23) * intBitsToFloat((whole - first + 127) << 23);
}

// erf as the CPU kernels compute it (SegwatchKernels' VectorMath: a rational approximation
// on [-4, 4], clamped outside): GLSL has no erf, and the two backends then agree to rounding.
float erfRational(float x) {
    x = clamp(x, -4.0, 4.0);
    float x2 = x * x;
    float p = fma(x2, -2.72614225801306e-10, 2.77068142495902e-08);
    p = fma(p, x2, -2.10102402082508e-06);
    p = fma(p, x2, -5.69250639462346e-05);
    p = fma(p, x2, -7.34990630326855e-04);
    p = fma(p, x2, -2.95459980854025e-03);
    p = fma(p, x2, -1.60960333262415e-02);
    p = p * x;
    float q = fma(x2, -1.45660718464996e-05, -2.13374055278905e-04);
    q = fma(q, x2, -1.68282697438203e-03);
    q = fma(q, x2, -7.37332916720468e-03);
    q = fma(q, x2, -1.42647390514189e-02);
    return p / q;
}

// tanh that saturates instead of overflowing (exp(2x) = inf gives 1).
float tanhSaturating(float x) { return 1.0 - 2.0 / (exp2ulp(2.0 * x) + 1.0); }

float activate(float x, uint activation) {
    switch (activation) {
    case ACT_GELU: return 0.5 * x * (1.0 + erfRational(x * 0.70710678118654752));
    case ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanhSaturating(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case ACT_QUICK_GELU: return x / (1.0 + exp2ulp(-1.702 * x));
    case ACT_RELU: return max(x, 0.0);
    case ACT_SIGMOID: return 1.0 / (1.0 + exp2ulp(-x));
    default: return x;
    }
}
