import CFFmpeg
import Foundation

/// An open input: the `AVFormatContext` and the packets read from it.
///
/// Owned by one thread at a time. Every blocking call runs under the gate's deadline:
/// `spec.openTimeout` while opening, `spec.readTimeout` for each packet.
final class Demuxer {
    let spec: InputSpec
    let gate: InterruptGate
    private(set) var context: UnsafeMutablePointer<AVFormatContext>

    init(_ spec: InputSpec, gate: InterruptGate) throws {
        FFmpegLog.install()
        self.spec = spec
        self.gate = gate
        _ = FFmpegLog.takeLast()

        guard var context = avformat_alloc_context() else {
            throw MediaError.openFailed(input: spec.redacted, reason: "out of memory")
        }
        context.pointee.interrupt_callback = gate.callback

        var inputFormat: UnsafePointer<AVInputFormat>?
        if let name = spec.format {
            inputFormat = av_find_input_format(name)
            if inputFormat == nil {
                avformat_free_context(context)
                throw MediaError.openFailed(input: spec.redacted,
                                            reason: "this FFmpeg build has no '\(name)' input format")
            }
        }

        var dictionary: OpaquePointer?
        for (key, value) in spec.options { av_dict_set(&dictionary, key, value, 0) }
        defer { av_dict_free(&dictionary) }

        gate.arm(seconds: spec.openTimeout)
        defer { gate.disarm() }
        var maybeContext: UnsafeMutablePointer<AVFormatContext>? = context
        let opened = avformat_open_input(&maybeContext, spec.url, inputFormat, &dictionary)
        if opened < 0 {
            // avformat_open_input frees the context on failure.
            throw Demuxer.openError(spec: spec, gate: gate, code: opened, during: "opening")
        }
        context = maybeContext!
        let found = avformat_find_stream_info(context, nil)
        if found < 0 {
            avformat_close_input(&maybeContext)
            throw Demuxer.openError(spec: spec, gate: gate, code: found, during: "reading stream info")
        }
        self.context = context
    }

    deinit {
        var maybeContext: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&maybeContext)
    }

    private static func openError(spec: InputSpec, gate: InterruptGate, code: Int32, during: String) -> MediaError {
        if gate.isStopped { return .cancelled(input: spec.redacted) }
        if gate.isPastDeadline || code == averrorExit {
            return .timedOut(input: spec.redacted, operation: during, seconds: spec.openTimeout)
        }
        var reason = avErrorText(code)
        if code == cffmpeg_averror_invaliddata() {
            reason = "not a media file FFmpeg can read (\(reason))"
        }
        if let detail = FFmpegLog.takeLast(), !reason.contains(detail) {
            reason += "; ffmpeg: \(detail)"
        }
        return .openFailed(input: spec.redacted, reason: reason)
    }

    var streams: UnsafeBufferPointer<UnsafeMutablePointer<AVStream>?> {
        UnsafeBufferPointer(start: context.pointee.streams, count: Int(context.pointee.nb_streams))
    }

    /// Reads the next packet; false at the end of the input.
    /// Throws on a read error, a stall past `readTimeout`, or a stop.
    func read(into packet: UnsafeMutablePointer<AVPacket>) throws -> Bool {
        gate.arm(seconds: spec.readTimeout)
        defer { gate.disarm() }
        let code = av_read_frame(context, packet)
        if code >= 0 { return true }
        if code == averrorEOF { return false }
        if gate.isStopped { throw MediaError.cancelled(input: spec.redacted) }
        if gate.isPastDeadline || code == averrorExit {
            throw MediaError.timedOut(input: spec.redacted, operation: "reading", seconds: spec.readTimeout)
        }
        var message = avErrorText(code)
        if let detail = FFmpegLog.takeLast() { message += "; ffmpeg: \(detail)" }
        throw MediaError.ffmpeg(input: spec.redacted, call: "av_read_frame", code: code, message: message)
    }
}
