// zlib for Swift: gunzip of OpenAI's BPE vocabulary file.
#ifndef SEGWATCH_CZLIB_SHIM_H
#define SEGWATCH_CZLIB_SHIM_H

#include <zlib.h>

#endif
