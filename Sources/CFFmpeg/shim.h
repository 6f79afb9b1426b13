// FFmpeg headers for Swift, plus the few macros Swift cannot import, wrapped as functions.
#ifndef SEGWATCH_CFFMPEG_SHIM_H
#define SEGWATCH_CFFMPEG_SHIM_H

#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>

/// AVERROR(e): FFmpeg's negated errno codes.
static inline int cffmpeg_averror(int errnum) { return AVERROR(errnum); }
/// AVERROR_EOF, built with FFERRTAG, which Swift cannot import.
static inline int cffmpeg_averror_eof(void) { return AVERROR_EOF; }
/// AVERROR_EXIT: returned when the interrupt callback aborts a blocking call.
static inline int cffmpeg_averror_exit(void) { return AVERROR_EXIT; }
/// AVERROR_INVALIDDATA.
static inline int cffmpeg_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
/// AV_NOPTS_VALUE, a cast expression Swift cannot import.
static inline int64_t cffmpeg_nopts_value(void) { return AV_NOPTS_VALUE; }
/// AV_TIME_BASE_Q, a compound literal Swift cannot import.
static inline AVRational cffmpeg_time_base_q(void) { return AV_TIME_BASE_Q; }

#endif
