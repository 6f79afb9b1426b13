// FreeType for Swift: the glyphs of the labels drawn on overlays.
#ifndef SEGWATCH_CFREETYPE_SHIM_H
#define SEGWATCH_CFREETYPE_SHIM_H

#include <ft2build.h>
#include FT_FREETYPE_H

// Macros Swift does not import.
static const FT_Int32 segwatch_ft_load_render = FT_LOAD_RENDER;
static const FT_Long segwatch_ft_pixel_mode_gray = FT_PIXEL_MODE_GRAY;

#endif
