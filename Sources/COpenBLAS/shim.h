// OpenBLAS's CBLAS interface and thread control.
#ifndef SEGWATCH_COPENBLAS_SHIM_H
#define SEGWATCH_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
