import CFFmpeg
import Foundation

/// Settings for the annotated-video encoder.
public struct EncoderSettings: Sendable, Hashable {
    /// Encoders to try, in order; the first one this FFmpeg has is used.
    public var codecs: [String]
    /// x264's constant rate factor (lower is better quality).
    public var crf: Int
    /// x264's speed preset.
    public var preset: String
    /// Bit rate for encoders without a quality mode (mpeg4), in bits per second.
    public var bitRate: Int
    /// Timestamps are stored in units of 1/`timeScale` s; 90 kHz represents every common rate.
    public var timeScale: Int32

    public init(codecs: [String] = ["libx264", "mpeg4"], crf: Int = 23, preset: String = "veryfast",
                bitRate: Int = 4_000_000, timeScale: Int32 = 90_000) {
        self.codecs = codecs
        self.crf = crf
        self.preset = preset
        self.bitRate = bitRate
        self.timeScale = timeScale
    }
}

/// Writes RGB frames as H.264 (or MPEG-4 Part 2) into an MP4 or MKV file, keeping the frames'
/// own timestamps.
///
/// `finish()` writes the trailer that makes an MP4 playable; call it at every end, including
/// after SIGINT/SIGTERM. Dropping an unfinished encoder also finishes the file, best effort.
public final class VideoEncoder {
    public let path: String
    public let width: Int
    public let height: Int
    /// The encoder in use (`libx264` or a fallback).
    public let codecName: String
    public private(set) var framesWritten = 0

    private var format: UnsafeMutablePointer<AVFormatContext>
    private var codec: UnsafeMutablePointer<AVCodecContext>
    private let stream: UnsafeMutablePointer<AVStream>
    private let yuv: UnsafeMutablePointer<AVFrame>
    private let packet: UnsafeMutablePointer<AVPacket>
    private var scaler: OpaquePointer?
    private let frameDuration: Int64
    private var lastPTS: Int64 = .min
    private var finished = false
    private var headerWritten = false
    private var released = false

    /// Creates `path` (format from its extension: .mp4, .mkv, .mov) for frames of
    /// `width`x`height` at a nominal `frameRate`.
    public init(path: String, width: Int, height: Int, frameRate: Double,
                settings: EncoderSettings = EncoderSettings()) throws {
        FFmpegLog.install()
        _ = FFmpegLog.takeLast()
        self.path = path
        guard width >= 2, height >= 2, width <= 16384, height <= 16384 else {
            throw MediaError.invalidArgument(input: path, reason: "frame size \(width)x\(height) is out of range (2...16384)")
        }
        guard frameRate.isFinite, frameRate > 0, frameRate <= 1000 else {
            throw MediaError.invalidArgument(input: path, reason: "frame rate \(frameRate) is out of range (0...1000]")
        }
        // 4:2:0 chroma needs even sizes; the last odd row or column is dropped.
        self.width = width & ~1
        self.height = height & ~1

        var formatContext: UnsafeMutablePointer<AVFormatContext>?
        let allocated = avformat_alloc_output_context2(&formatContext, nil, nil, path)
        guard allocated >= 0, let formatContext else {
            throw MediaError.encoderFailed(output: path, call: "avformat_alloc_output_context2",
                                           message: "cannot choose a container from the file name (use .mp4, .mkv or .mov): \(avErrorText(allocated))")
        }
        format = formatContext

        var chosen: (UnsafePointer<AVCodec>, String)?
        for name in settings.codecs {
            if let encoder = avcodec_find_encoder_by_name(name) { chosen = (encoder, name); break }
        }
        guard let (encoder, name) = chosen else {
            avformat_free_context(formatContext)
            throw MediaError.encoderFailed(output: path, call: "avcodec_find_encoder_by_name",
                                           message: "none of the encoders \(settings.codecs.joined(separator: ", ")) is available")
        }
        codecName = name

        guard let codecContext = avcodec_alloc_context3(encoder),
              let stream = avformat_new_stream(formatContext, nil),
              let yuv = av_frame_alloc(), let packet = av_packet_alloc() else {
            avformat_free_context(formatContext)
            throw MediaError.encoderFailed(output: path, call: "alloc", message: "out of memory")
        }
        codec = codecContext
        self.stream = stream
        self.yuv = yuv
        self.packet = packet

        let rate = av_d2q(frameRate, 1_000_000)
        // MPEG-4 Part 2 caps the time base at 16 bits; 60 kHz divides every common frame rate.
        let timeScale = name == "libx264" ? settings.timeScale : min(settings.timeScale, 60_000)
        frameDuration = max(1, Int64((Double(timeScale) / frameRate).rounded()))
        codecContext.pointee.width = Int32(self.width)
        codecContext.pointee.height = Int32(self.height)
        codecContext.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        codecContext.pointee.time_base = AVRational(num: 1, den: timeScale)
        codecContext.pointee.framerate = rate
        codecContext.pointee.gop_size = Int32(min(250, max(1, Int(frameRate * 2))))
        codecContext.pointee.thread_count = 0
        if name != "libx264" { codecContext.pointee.bit_rate = Int64(settings.bitRate) }
        if formatContext.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 {
            codecContext.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        var options: OpaquePointer?
        if name == "libx264" {
            av_dict_set(&options, "crf", String(settings.crf), 0)
            av_dict_set(&options, "preset", settings.preset, 0)
        }
        var code = avcodec_open2(codecContext, encoder, &options)
        av_dict_free(&options)
        if code >= 0 { code = avcodec_parameters_from_context(stream.pointee.codecpar, codecContext) }
        if code >= 0 {
            stream.pointee.time_base = codecContext.pointee.time_base
            stream.pointee.avg_frame_rate = rate
            yuv.pointee.format = AV_PIX_FMT_YUV420P.rawValue
            yuv.pointee.width = Int32(self.width)
            yuv.pointee.height = Int32(self.height)
            code = av_frame_get_buffer(yuv, 0)
        }
        if code >= 0, formatContext.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            code = avio_open(&formatContext.pointee.pb, path, AVIO_FLAG_WRITE)
        }
        if code >= 0 {
            code = avformat_write_header(formatContext, nil)
            headerWritten = code >= 0
        }
        if code < 0 {
            let failure = MediaError.encoderFailed(output: path, call: "opening the encoder", message: avErrorText(code))
            release()
            throw failure
        }
    }

    deinit {
        if !finished { try? finish() }
        release()
    }

    private func release() {
        guard !released else { return }
        released = true
        var c: UnsafeMutablePointer<AVCodecContext>? = codec
        var f: UnsafeMutablePointer<AVFrame>? = yuv
        var p: UnsafeMutablePointer<AVPacket>? = packet
        avcodec_free_context(&c)
        av_frame_free(&f)
        av_packet_free(&p)
        sws_freeContext(scaler)
        scaler = nil
        if format.pointee.pb != nil, format.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            avio_closep(&format.pointee.pb)
        }
        avformat_free_context(format)
        finished = true
    }

    /// Encodes a packed 8-bit frame (`rgb24` or `bgr24`), scaled to the encoder's size if needed.
    /// Its `pts` is kept; a missing or non-increasing one follows the previous frame.
    public func append(_ frame: VideoFrame) throws {
        try frame.withUnsafeBytes { bytes in
            try append(pixels: bytes.baseAddress!, width: frame.width, height: frame.height,
                       rowBytes: frame.rowBytes, layout: frame.layout, pts: frame.pts)
        }
    }

    /// Encodes packed pixels: `height` rows of `rowBytes`, 3 bytes per pixel.
    public func append(pixels: UnsafeRawPointer, width: Int, height: Int, rowBytes: Int,
                       layout: PixelLayout, pts: Double?) throws {
        guard !finished else { throw MediaError.encoderFailed(output: path, call: "append", message: "the file is already finished") }
        // Checked here, where the bytes are read as 3 per pixel, so no caller can get past it.
        guard layout == .rgb24 || layout == .bgr24 else {
            throw MediaError.invalidArgument(input: path, reason: "the encoder takes rgb24 or bgr24 frames, not \(layout.rawValue)")
        }
        scaler = sws_getCachedContext(scaler, Int32(width), Int32(height),
                                      layout == .bgr24 ? AV_PIX_FMT_BGR24 : AV_PIX_FMT_RGB24,
                                      Int32(self.width), Int32(self.height), AV_PIX_FMT_YUV420P,
                                      SWS_BICUBIC, nil, nil, nil)
        guard let scaler else {
            throw MediaError.encoderFailed(output: path, call: "sws_getCachedContext", message: "cannot convert \(width)x\(height) \(layout.rawValue)")
        }
        // The encoder may still hold the previous picture; get a writable one.
        var code = av_frame_make_writable(yuv)
        guard code >= 0 else { throw MediaError.encoderFailed(output: path, call: "av_frame_make_writable", message: avErrorText(code)) }
        var sourcePlane: UnsafePointer<UInt8>? = pixels.assumingMemoryBound(to: UInt8.self)
        var sourceStride = Int32(rowBytes)
        withUnsafeMutableBytes(of: &yuv.pointee.data) { planes in
            withUnsafeMutableBytes(of: &yuv.pointee.linesize) { strides in
                _ = sws_scale(scaler, &sourcePlane, &sourceStride, 0, Int32(height),
                              planes.baseAddress!.assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                              strides.baseAddress!.assumingMemoryBound(to: Int32.self))
            }
        }
        var timestamp = pts.map { Int64(($0 * Double(codec.pointee.time_base.den)).rounded()) }
            ?? (lastPTS == .min ? 0 : lastPTS + frameDuration)
        if lastPTS != .min && timestamp <= lastPTS { timestamp = lastPTS + 1 }
        lastPTS = timestamp
        yuv.pointee.pts = timestamp
        code = avcodec_send_frame(codec, yuv)
        guard code >= 0 else { throw MediaError.encoderFailed(output: path, call: "avcodec_send_frame", message: avErrorText(code)) }
        try writePackets()
        framesWritten += 1
    }

    /// Flushes the encoder and writes the trailer, leaving a playable file.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        guard headerWritten else { return }
        avcodec_send_frame(codec, nil)
        let flushError: Error?
        do { try writePackets(); flushError = nil } catch { flushError = error }
        let code = av_write_trailer(format)
        avio_flush(format.pointee.pb)
        if let flushError { throw flushError }
        if code < 0 { throw MediaError.encoderFailed(output: path, call: "av_write_trailer", message: avErrorText(code)) }
    }

    private func writePackets() throws {
        while true {
            let code = avcodec_receive_packet(codec, packet)
            if code == averrorEAGAIN || code == averrorEOF { return }
            guard code >= 0 else { throw MediaError.encoderFailed(output: path, call: "avcodec_receive_packet", message: avErrorText(code)) }
            av_packet_rescale_ts(packet, codec.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = stream.pointee.index
            let written = av_interleaved_write_frame(format, packet)
            guard written >= 0 else { throw MediaError.encoderFailed(output: path, call: "av_interleaved_write_frame", message: avErrorText(written)) }
        }
    }
}
