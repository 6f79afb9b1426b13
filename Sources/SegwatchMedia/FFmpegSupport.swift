import CFFmpeg
import Foundation
import Synchronization

/// The `av_strerror` text of an FFmpeg error code.
func avErrorText(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    if av_strerror(code, &buffer, buffer.count) < 0 {
        return "unknown FFmpeg error \(code)"
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

let averrorEOF = cffmpeg_averror_eof()
let averrorEAGAIN = cffmpeg_averror(EAGAIN)
let averrorExit = cffmpeg_averror_exit()
let avNoPTS = cffmpeg_nopts_value()

/// FFmpeg's own log, kept quiet and captured.
///
/// FFmpeg logs through a process-wide callback. segwatch keeps the last error-level lines
/// (credentials removed) so that an error can say what FFmpeg said, and prints them to
/// stderr only when asked (`FFmpegLog.echo`), so the user's output stays clean.
public enum FFmpegLog {
    private static let state = Mutex(State())

    private struct State {
        var recent: [String] = []
        var echo = false
        var installed = false
    }

    /// Installs the callback once per process. Called by every entry point of the media layer.
    static func install() {
        let first = state.withLock { s -> Bool in
            defer { s.installed = true }
            return !s.installed
        }
        guard first else { return }
        av_log_set_level(AV_LOG_ERROR)
        av_log_set_callback { _, level, format, arguments in
            guard level <= AV_LOG_ERROR, let format, let arguments else { return }
            var line = [CChar](repeating: 0, count: 1024)
            var printPrefix: Int32 = 1
            av_log_format_line2(nil, level, format, arguments, &line, Int32(line.count), &printPrefix)
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { return }
            FFmpegLog.record(redactCredentials(in: text))
        }
        avdevice_register_all()
        avformat_network_init()
    }

    private static func record(_ line: String) {
        let echo = state.withLock { s -> Bool in
            s.recent.append(line)
            if s.recent.count > 8 { s.recent.removeFirst(s.recent.count - 8) }
            return s.echo
        }
        if echo { FileHandle.standardError.write(Data("ffmpeg: \(line)\n".utf8)) }
    }

    /// Whether FFmpeg's error lines are also printed to stderr.
    public static var echo: Bool {
        get { state.withLock { $0.echo } }
        set { state.withLock { $0.echo = newValue } }
    }

    /// The most recent error line FFmpeg logged, if any, and forgets it.
    static func takeLast() -> String? {
        state.withLock { s in
            defer { s.recent.removeAll() }
            return s.recent.last
        }
    }
}

/// Replaces `user:password@` in any URL inside `text` with `***@`.
func redactCredentials(in text: String) -> String {
    guard text.contains("://"), text.contains("@") else { return text }
    var out = ""
    var rest = Substring(text)
    while let scheme = rest.range(of: "://") {
        out += rest[..<scheme.upperBound]
        rest = rest[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == " " || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            out += "***@"
            rest = rest[rest.index(after: at)...]
        }
    }
    return out + rest
}
