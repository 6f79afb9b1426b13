// The Vulkan loader's API, for the compute backend that comes after the CPU one.
#ifndef SEGWATCH_CVULKAN_SHIM_H
#define SEGWATCH_CVULKAN_SHIM_H
#include <vulkan/vulkan.h>
#endif
