import CFFmpeg

/// A file on a web server read from a byte offset onwards, through FFmpeg's http and https
/// protocols (redirects followed, TLS through FFmpeg's own build), for downloads that resume.
///
/// Every read is bounded: `timeout` seconds without a byte is an error, and the gate's
/// `stop()` interrupts a read at once. Owned by one thread at a time.
public final class RemoteFile {
    /// The URL without credentials, for messages.
    public let name: String
    /// The whole file's size, as the server announced it; nil when it did not.
    public let size: Int64?
    private var context: UnsafeMutablePointer<AVIOContext>?
    private let gate: InterruptGate
    private let timeout: Double

    /// Opens `url` (http:// or https://) at byte `offset`, which the server is asked for
    /// with a Range request.
    public init(url: String, offset: Int64 = 0, timeout: Double = 30, gate: InterruptGate) throws(MediaError) {
        FFmpegLog.install()
        name = redactCredentials(in: url)
        self.gate = gate
        self.timeout = timeout
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw .invalidArgument(input: name, reason: "not an http:// or https:// URL")
        }
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        av_dict_set(&options, "offset", String(offset), 0)
        av_dict_set(&options, "rw_timeout", String(Int64(timeout * 1_000_000)), 0)
        av_dict_set(&options, "user_agent", "segwatch", 0)
        av_dict_set(&options, "protocol_whitelist", "http,https,tls,tcp", 0)
        var callback = gate.callback
        gate.arm(seconds: timeout)
        defer { gate.disarm() }
        var opened: UnsafeMutablePointer<AVIOContext>?
        let code = avio_open2(&opened, url, AVIO_FLAG_READ, &callback, &options)
        guard code >= 0, let opened else {
            if gate.isStopped { throw .cancelled(input: name) }
            throw .openFailed(input: name, reason: FFmpegLog.takeLast().map { "\(avErrorText(code)) (\($0))" } ?? avErrorText(code))
        }
        context = opened
        let total = avio_size(opened)
        size = total > 0 ? total : nil
    }

    deinit { avio_closep(&context) }

    /// Reads up to `buffer.count` bytes; 0 at the end of the file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(MediaError) -> Int {
        guard let context, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        gate.arm(seconds: timeout)
        defer { gate.disarm() }
        let count = avio_read_partial(context, base.assumingMemoryBound(to: UInt8.self), Int32(min(buffer.count, Int(Int32.max))))
        if count == cffmpeg_averror_eof() || count == 0 { return 0 }
        guard count > 0 else {
            if gate.isStopped { throw .cancelled(input: name) }
            throw .ffmpeg(input: name, call: "reading", code: count, message: avErrorText(count))
        }
        return Int(count)
    }
}
