// The Vulkan backend's compute kernels as SPIR-V, compiled from glsl/*.comp by make_shaders.py.
#ifndef SEGWATCH_CVULKANSHADERS_H
#define SEGWATCH_CVULKANSHADERS_H
#include <stddef.h>
#include <stdint.h>

struct segwatch_shader {
    const char *name;     // the GLSL file's name without .comp
    const uint32_t *code; // SPIR-V words
    size_t size;          // bytes
};

// Every shader; `count` receives how many.
const struct segwatch_shader *segwatch_shader_table(size_t *count);

#endif
