#ifndef CBPE_VOCABULARY_H
#define CBPE_VOCABULARY_H

/// OpenAI's gzipped BPE vocabulary, built into the binary.
const unsigned char *cbpe_vocabulary_bytes(void);
/// Its size in bytes.
unsigned long cbpe_vocabulary_count(void);

#endif
