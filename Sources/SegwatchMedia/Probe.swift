import CFFmpeg

/// What `segwatch probe` reports about an input.
public struct ProbeReport: Sendable, Codable, Hashable {
    public var input: String
    /// The demuxer's name (`mov,mp4,m4a,3gp,3g2,mj2`, `rtsp`, …).
    public var format: String
    /// Seconds, when the container knows.
    public var duration: Double?
    public var bitRate: Int?
    public var streams: [Stream]
    /// Why counting stopped early: the input is damaged after the frames counted.
    public var error: String?

    public struct Stream: Sendable, Codable, Hashable {
        public var index: Int
        /// `video`, `audio`, `subtitle`, `data`, …
        public var type: String
        public var codec: String
        public var width: Int?
        public var height: Int?
        public var fps: Double?
        public var duration: Double?
        /// Decoded frames, when counted (`--count-frames`).
        public var frames: Int?
        public var sampleRate: Int?
        public var channels: Int?

        enum CodingKeys: String, CodingKey {
            case index, type, codec, width, height, fps, duration, frames
            case sampleRate = "sample_rate", channels
        }
    }

    enum CodingKeys: String, CodingKey {
        case input, format, duration, bitRate = "bit_rate", streams, error
    }
}

/// Reads an input's streams, and optionally decodes every video frame to count them exactly
/// (like `ffprobe -count_frames`).
public enum MediaProbe {
    /// Describes `spec`. With `countFrames`, every video stream is decoded to the end; when a
    /// stream is damaged, its `frames` is the count reached and `error` says what happened.
    public static func probe(_ spec: InputSpec, countFrames: Bool = false,
                             gate: InterruptGate = InterruptGate()) throws -> ProbeReport {
        let demuxer = try Demuxer(spec, gate: gate)
        let context = demuxer.context
        var report = ProbeReport(
            input: spec.redacted,
            format: String(cString: context.pointee.iformat.pointee.name),
            duration: context.pointee.duration > 0 && context.pointee.duration != avNoPTS
                ? Double(context.pointee.duration) / Double(AV_TIME_BASE) : nil,
            bitRate: context.pointee.bit_rate > 0 ? Int(context.pointee.bit_rate) : nil,
            streams: [])
        for case let stream? in demuxer.streams {
            let parameters = stream.pointee.codecpar.pointee
            var entry = ProbeReport.Stream(
                index: Int(stream.pointee.index),
                type: av_get_media_type_string(parameters.codec_type).map { String(cString: $0) } ?? "unknown",
                codec: String(cString: avcodec_get_name(parameters.codec_id)))
            switch parameters.codec_type {
            case AVMEDIA_TYPE_VIDEO:
                let info = streamInfo(stream, format: context)
                entry.width = info.width
                entry.height = info.height
                entry.fps = info.fps
                entry.duration = info.duration
            case AVMEDIA_TYPE_AUDIO:
                entry.sampleRate = Int(parameters.sample_rate)
                entry.channels = Int(parameters.ch_layout.nb_channels)
                if stream.pointee.duration > 0 && stream.pointee.duration != avNoPTS {
                    entry.duration = Double(stream.pointee.duration) * av_q2d(stream.pointee.time_base)
                }
            default:
                break
            }
            report.streams.append(entry)
        }
        guard countFrames else { return report }
        for i in report.streams.indices where report.streams[i].type == "video" {
            // A fresh demuxer per stream keeps the decoder simple; files rarely have more than one.
            let decoder = try VideoDecoder(spec, streamIndex: report.streams[i].index, gate: gate)
            do {
                while try decoder.skip() {}
            } catch let error as MediaError {
                guard case .truncated = error else { throw error }
                report.error = error.description
            }
            report.streams[i].frames = decoder.framesDecoded
        }
        return report
    }
}
