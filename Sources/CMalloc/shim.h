// glibc's allocator tuning (mallopt), for a long-running process's resident size.
#ifndef SEGWATCH_CMALLOC_SHIM_H
#define SEGWATCH_CMALLOC_SHIM_H

#include <malloc.h>

#endif
