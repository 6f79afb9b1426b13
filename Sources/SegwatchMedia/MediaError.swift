/// Everything that can go wrong in the media layer.
///
/// Each case names the input (with any credentials removed, see `InputSpec.redacted`) and,
/// where FFmpeg failed, the call and its `av_strerror` text, so the command line can print
/// one clear line.
public enum MediaError: Error, Sendable, Equatable {
    /// The input could not be opened: missing file, refused connection, unknown format.
    case openFailed(input: String, reason: String)
    /// The input opened but has no video stream that segwatch can decode.
    case noVideoStream(input: String, found: String)
    /// A video stream exists but no decoder for its codec is available.
    case unsupportedCodec(input: String, codec: String)
    /// An FFmpeg call failed while reading or decoding.
    case ffmpeg(input: String, call: String, code: Int32, message: String)
    /// A blocking operation did not finish within its timeout.
    case timedOut(input: String, operation: String, seconds: Double)
    /// The stream ended early: `decoded` frames were delivered, the container announced `expected`.
    case truncated(input: String, decoded: Int, expected: Int?, reason: String)
    /// A caller passed an unusable setting.
    case invalidArgument(input: String, reason: String)
    /// The output file could not be written.
    case encoderFailed(output: String, call: String, message: String)
    /// The operation was cancelled (source stopped, signal received).
    case cancelled(input: String)
}

extension MediaError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .openFailed(input, reason):
            return "cannot open \(input): \(reason)"
        case let .noVideoStream(input, found):
            return "\(input) has no decodable video stream (expected a video stream; found \(found))"
        case let .unsupportedCodec(input, codec):
            return "\(input): no decoder for video codec '\(codec)' in this FFmpeg build"
        case let .ffmpeg(input, call, code, message):
            return "\(input): \(call) failed: \(message) (code \(code))"
        case let .timedOut(input, operation, seconds):
            return "\(input): \(operation) timed out after \(formatSeconds(seconds))"
        case let .truncated(input, decoded, expected, reason):
            let of = expected.map { " of \($0) announced" } ?? ""
            return "\(input) is truncated or damaged: decoded \(decoded)\(of) frames, then \(reason)"
        case let .invalidArgument(input, reason):
            return "\(input): \(reason)"
        case let .encoderFailed(output, call, message):
            return "cannot write \(output): \(call) failed: \(message)"
        case let .cancelled(input):
            return "\(input): cancelled"
        }
    }
}

extension MediaError {
    /// The part of the message after the input's name, for wrapping one error in another.
    var reason: String {
        switch self {
        case let .ffmpeg(_, call, _, message): return "\(call) failed: \(message)"
        case let .timedOut(_, operation, seconds): return "\(operation) timed out after \(formatSeconds(seconds))"
        default: return description
        }
    }
}

func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
}
