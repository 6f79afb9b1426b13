// OpenAI's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, the file open_clip and OpenAI's CLIP
// ship) embedded in the binary, so that an installed segwatch tokenizes with no file beside it:
// a resource bundle is looked up in the build folder and is gone once the binary is copied.
//
// The assembler's .incbin reads the file at build time. Its path is this source's own path
// (__FILE__, absolute under SwiftPM) plus ".gz": the data file is named after this file so
// that no include path has to be configured.
#include "bpe_vocabulary.h"

__asm__(
    "  .section .rodata\n"
    "  .global segwatch_bpe_vocabulary_start\n"
    "  .type segwatch_bpe_vocabulary_start, @object\n"
    "  .balign 16\n"
    "segwatch_bpe_vocabulary_start:\n"
    "  .incbin \"" __FILE__ ".gz\"\n"
    "  .global segwatch_bpe_vocabulary_end\n"
    "  .type segwatch_bpe_vocabulary_end, @object\n"
    "segwatch_bpe_vocabulary_end:\n"
    "  .byte 0\n"
    "  .previous\n");

extern const unsigned char segwatch_bpe_vocabulary_start[];
extern const unsigned char segwatch_bpe_vocabulary_end[];

const unsigned char *cbpe_vocabulary_bytes(void) { return segwatch_bpe_vocabulary_start; }

unsigned long cbpe_vocabulary_count(void) {
    return (unsigned long)(segwatch_bpe_vocabulary_end - segwatch_bpe_vocabulary_start);
}
