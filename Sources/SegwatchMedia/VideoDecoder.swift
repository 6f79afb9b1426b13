import CFFmpeg

/// What a decoder produces: the size and layout of its frames and how to scale them.
public struct DecodeOptions: Sendable, Hashable {
    /// Output size; nil keeps the source's.
    public var width: Int?
    public var height: Int?
    public var layout: PixelLayout
    /// Interpolation when resizing. ffmpeg's CLI scales with bicubic by default.
    public var scaler: ScalerKind
    /// Decoder threads; 0 lets FFmpeg pick one per core.
    public var threads: Int

    public init(width: Int? = nil, height: Int? = nil, layout: PixelLayout = .rgb24,
                scaler: ScalerKind = .bicubic, threads: Int = 0) {
        self.width = width
        self.height = height
        self.layout = layout
        self.scaler = scaler
        self.threads = threads
    }
}

/// The video stream a decoder reads.
public struct VideoStreamInfo: Sendable, Hashable, Codable {
    public var index: Int
    public var codec: String
    public var width: Int
    public var height: Int
    /// Average frame rate, or the stream's base rate when the container gives no average.
    public var fps: Double?
    /// Seconds, from the stream or else the container.
    public var duration: Double?
    /// Frame count announced by the container (not counted), if any.
    public var announcedFrames: Int?
}

/// Decodes the best video stream of an input into converted frames, pulled one at a time.
///
/// A file is read as fast as `next()` is called and no frame is lost. The decoder is owned
/// by one thread or task at a time; the frames it returns are `Sendable`.
public final class VideoDecoder {
    public let spec: InputSpec
    public let stream: VideoStreamInfo
    public let options: DecodeOptions
    /// Packets the decoder rejected as corrupt (decoding went on past them).
    public private(set) var corruptPackets = 0

    private let demuxer: Demuxer
    private var codecContext: UnsafeMutablePointer<AVCodecContext>
    private let converter: FrameConverter
    private let packet: UnsafeMutablePointer<AVPacket>
    private let frame: UnsafeMutablePointer<AVFrame>
    private let timeBase: AVRational
    private var produced = 0
    private var draining = false
    private var finished = false
    private var readError: MediaError?
    private var lastPTS: Double?
    private let streamStart: Double

    /// Opens `spec` and its best video stream.
    /// `streamIndex` picks a video stream; nil takes FFmpeg's best one.
    public convenience init(_ spec: InputSpec, options: DecodeOptions = DecodeOptions(),
                            streamIndex: Int? = nil, gate: InterruptGate = InterruptGate()) throws {
        try self.init(demuxer: Demuxer(spec, gate: gate), options: options, streamIndex: streamIndex)
    }

    init(demuxer: Demuxer, options: DecodeOptions, streamIndex: Int? = nil) throws {
        let spec = demuxer.spec
        if let w = options.width, let h = options.height, w <= 0 || h <= 0 || w > 16384 || h > 16384 {
            throw MediaError.invalidArgument(input: spec.redacted, reason: "output size \(w)x\(h) is out of range (1...16384)")
        }
        self.demuxer = demuxer
        self.spec = spec
        self.options = options

        let context = demuxer.context
        var decoder: UnsafePointer<AVCodec>?
        let best = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, Int32(streamIndex ?? -1), -1, &decoder, 0)
        if best < 0 {
            let video = demuxer.streams.first { $0?.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO }
            if let video, let video {
                throw MediaError.unsupportedCodec(input: spec.redacted,
                                                  codec: String(cString: avcodec_get_name(video.pointee.codecpar.pointee.codec_id)))
            }
            throw MediaError.noVideoStream(input: spec.redacted, found: describeStreams(demuxer.streams))
        }
        guard let decoder else {
            throw MediaError.noVideoStream(input: spec.redacted, found: describeStreams(demuxer.streams))
        }
        let avStream = demuxer.streams[Int(best)]!
        // Checked before anything is allocated: a throw from here on must free what it made.
        stream = streamInfo(avStream, format: context)
        if stream.width <= 0 || stream.height <= 0 {
            throw MediaError.noVideoStream(input: spec.redacted, found: "a video stream of size \(stream.width)x\(stream.height)")
        }
        for (i, other) in demuxer.streams.enumerated() where i != Int(best) {
            other?.pointee.discard = AVDISCARD_ALL
        }

        guard let codecContext = avcodec_alloc_context3(decoder) else {
            throw MediaError.openFailed(input: spec.redacted, reason: "out of memory")
        }
        self.codecContext = codecContext
        var failure: MediaError?
        var code = avcodec_parameters_to_context(codecContext, avStream.pointee.codecpar)
        if code >= 0 {
            codecContext.pointee.thread_count = Int32(options.threads)
            codecContext.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE
            codecContext.pointee.pkt_timebase = avStream.pointee.time_base
            code = avcodec_open2(codecContext, decoder, nil)
            if code < 0 {
                failure = .ffmpeg(input: spec.redacted, call: "avcodec_open2", code: code, message: avErrorText(code))
            }
        } else {
            failure = .ffmpeg(input: spec.redacted, call: "avcodec_parameters_to_context", code: code, message: avErrorText(code))
        }
        let packet = av_packet_alloc(), frame = av_frame_alloc()
        if failure == nil, packet == nil || frame == nil {
            failure = .openFailed(input: spec.redacted, reason: "out of memory")
        }
        if let failure {
            var p = packet, f = frame, c: UnsafeMutablePointer<AVCodecContext>? = codecContext
            av_packet_free(&p)
            av_frame_free(&f)
            avcodec_free_context(&c)
            throw failure
        }
        self.packet = packet!
        self.frame = frame!
        timeBase = avStream.pointee.time_base
        streamStart = avStream.pointee.start_time == avNoPTS ? 0 : Double(avStream.pointee.start_time) * av_q2d(timeBase)
        converter = FrameConverter(width: options.width, height: options.height, layout: options.layout, scaler: options.scaler)
    }

    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = packet
        var f: UnsafeMutablePointer<AVFrame>? = frame
        var c: UnsafeMutablePointer<AVCodecContext>? = codecContext
        av_packet_free(&p)
        av_frame_free(&f)
        avcodec_free_context(&c)
    }

    /// Frames returned so far.
    public var framesDecoded: Int { produced }

    /// The next frame, or nil at the end of the stream.
    ///
    /// A damaged input delivers every frame it can, then throws `MediaError.truncated`
    /// (or the read error itself when no frame came before it).
    public func next() throws -> VideoFrame? {
        guard try decodeNext() else { return nil }
        defer { av_frame_unref(frame) }
        let pts = framePTS()
        let converted = try converter.convert(frame, pts: pts, index: produced, input: spec.redacted)
        produced += 1
        return converted
    }

    /// Lends `body` the next frame as FFmpeg decoded it, before any conversion; nil at the end
    /// of the stream.
    func nextDecoded<R>(_ body: (UnsafePointer<AVFrame>) throws -> R) throws -> R? {
        guard try decodeNext() else { return nil }
        defer { av_frame_unref(frame) }
        _ = framePTS()
        produced += 1
        return try body(frame)
    }

    /// Decodes the next frame without converting it; false at the end of the stream.
    /// For counting frames, where the pixels are not needed.
    public func skip() throws -> Bool {
        guard try decodeNext() else { return false }
        _ = framePTS()
        av_frame_unref(frame)
        produced += 1
        return true
    }

    /// The decoded frame's time in seconds; remembers the latest for `endedEarly`.
    private func framePTS() -> Double? {
        let timestamp = frame.pointee.best_effort_timestamp
        guard timestamp != avNoPTS else { return nil }
        let seconds = Double(timestamp) * av_q2d(timeBase)
        lastPTS = max(lastPTS ?? seconds, seconds)
        return seconds
    }

    /// Why a stream that reached its end without an error still looks cut short: some
    /// demuxers (Matroska) log "File ended prematurely" and report a normal end. A file whose
    /// frames stop well before its announced duration is reported instead of passing silently.
    private func endedEarly() -> String? {
        guard !spec.isLive, let duration = stream.duration, let lastPTS else { return nil }
        let reached = lastPTS - streamStart + (stream.fps.map { 1 / $0 } ?? 0)
        guard reached < duration - max(1, 0.1 * duration) else { return nil }
        let detail = FFmpegLog.takeLast().map { " (ffmpeg: \($0))" } ?? ""
        return String(format: "the frames end at %.2f s of the %.2f s announced", reached, duration) + detail
    }

    /// Decodes into `frame`; false at the end of the stream.
    private func decodeNext() throws -> Bool {
        while !finished {
            let received = avcodec_receive_frame(codecContext, frame)
            if received >= 0 { return true }
            if received == averrorEOF {
                finished = true
                break
            }
            if received == cffmpeg_averror_invaliddata() {
                // Frame-threaded decoding reports a corrupt packet here rather than on send.
                corruptPackets += 1
                continue
            }
            if received != averrorEAGAIN {
                throw MediaError.ffmpeg(input: spec.redacted, call: "avcodec_receive_frame", code: received,
                                        message: avErrorText(received))
            }
            if draining {
                finished = true
                break
            }
            try feedDecoder()
        }
        if let readError {
            self.readError = nil
            throw produced == 0 ? readError : MediaError.truncated(
                input: spec.redacted, decoded: produced, expected: stream.announcedFrames, reason: readError.reason)
        }
        if let shortfall = endedEarly() {
            lastPTS = nil
            throw MediaError.truncated(input: spec.redacted, decoded: produced, expected: stream.announcedFrames,
                                       reason: shortfall)
        }
        return false
    }

    /// Sends the next packet of the video stream to the decoder, or starts draining at the end.
    private func feedDecoder() throws {
        while true {
            let more: Bool
            do {
                more = try demuxer.read(into: packet)
            } catch let error as MediaError {
                if case .cancelled = error { throw error }
                readError = error
                more = false
            }
            guard more else {
                avcodec_send_packet(codecContext, nil)
                draining = true
                return
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == Int32(stream.index) else { continue }
            let sent = avcodec_send_packet(codecContext, packet)
            if sent == cffmpeg_averror_invaliddata() {
                corruptPackets += 1
                continue
            }
            if sent < 0 && sent != averrorEAGAIN {
                throw MediaError.ffmpeg(input: spec.redacted, call: "avcodec_send_packet", code: sent, message: avErrorText(sent))
            }
            return
        }
    }
}

/// Reads the description of a video stream.
func streamInfo(_ stream: UnsafeMutablePointer<AVStream>, format: UnsafeMutablePointer<AVFormatContext>) -> VideoStreamInfo {
    let parameters = stream.pointee.codecpar.pointee
    var fps: Double?
    for rate in [stream.pointee.avg_frame_rate, stream.pointee.r_frame_rate] where rate.num > 0 && rate.den > 0 {
        fps = av_q2d(rate)
        break
    }
    var duration: Double?
    if stream.pointee.duration != avNoPTS && stream.pointee.duration > 0 {
        duration = Double(stream.pointee.duration) * av_q2d(stream.pointee.time_base)
    } else if format.pointee.duration != avNoPTS && format.pointee.duration > 0 {
        duration = Double(format.pointee.duration) / Double(AV_TIME_BASE)
    }
    return VideoStreamInfo(
        index: Int(stream.pointee.index),
        codec: String(cString: avcodec_get_name(parameters.codec_id)),
        width: Int(parameters.width),
        height: Int(parameters.height),
        fps: fps,
        duration: duration,
        announcedFrames: stream.pointee.nb_frames > 0 ? Int(stream.pointee.nb_frames) : nil)
}

/// "1 audio (aac), 1 data" — what an input holds, for error messages.
func describeStreams(_ streams: UnsafeBufferPointer<UnsafeMutablePointer<AVStream>?>) -> String {
    if streams.isEmpty { return "no streams" }
    return streams.compactMap { $0 }.map { stream in
        let parameters = stream.pointee.codecpar.pointee
        let type = av_get_media_type_string(parameters.codec_type).map { String(cString: $0) } ?? "unknown"
        return "\(type) (\(String(cString: avcodec_get_name(parameters.codec_id))))"
    }.joined(separator: ", ")
}
