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

// Activation codes, as Swift's Activation (VulkanKernels.swift) numbers them.
const uint ACT_NONE = 0, ACT_GELU = 1, ACT_GELU_TANH = 2, ACT_QUICK_GELU = 3, ACT_RELU = 4, ACT_SIGMOID = 5;

// erfc for z >= 0 (Abramowitz and Stegun 7.1.26, |error| <= 1.5e-7): GLSL has no erf.
float erfcPositive(float z) {
    float t = 1.0 / (1.0 + 0.3275911 * z);
    float poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return poly * exp(-z * z);
}

// tanh that saturates instead of overflowing (exp(2x) = inf gives 1).
float tanhSaturating(float x) { return 1.0 - 2.0 / (exp(2.0 * x) + 1.0); }

float activate(float x, uint activation) {
    switch (activation) {
    case ACT_GELU: {
        // x/2 (1 + erf(x / sqrt 2)), written with erfc so the negative side keeps its precision.
        float z = abs(x) * 0.70710678118654752;
        return x >= 0.0 ? 0.5 * x * (2.0 - erfcPositive(z)) : 0.5 * x * erfcPositive(z);
    }
    case ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanhSaturating(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    case ACT_RELU: return max(x, 0.0);
    case ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return x;
    }
}
