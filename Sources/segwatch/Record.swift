import ArgumentParser
import Foundation
import SegwatchService
import SegwatchMedia

/// `segwatch record`: decode an input and write it as H.264 video.
///
/// It exercises the same decoder and encoder that produce `segwatch run`'s annotated video,
/// and is handy for saving a clip of a camera.
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode an input and write it to an MP4 or MKV file (H.264, else MPEG-4).",
        discussion: """
            Source timestamps are kept. SIGINT or SIGTERM stops recording, and the file is \
            finalized and playable; a second signal does not interrupt that (SIGKILL does). \
            H.264 and MPEG-4 store 4:2:0 color, which needs even sizes: an odd width or height \
            loses its last column or row, and a note says so.
            """)

    @OptionGroup var source: InputOptions

    @Option(name: [.short, .customLong("out")], help: "The file to write: .mp4, .mkv or .mov.")
    var output: String

    @Option(help: "Stop after this many frames.")
    var maxFrames: Int?

    @Option(help: "Size of the recording, WIDTHxHEIGHT (width first), e.g. 640x480; default: the source's.")
    var size: String?

    @Option(help: "Encoders to try in order, comma-separated.")
    var codecs: String = "libx264,mpeg4"

    @Flag(help: "Print a JSON summary on stdout when done.")
    var json = false

    func validate() throws {
        if let maxFrames, maxFrames <= 0 { throw ValidationError("--max-frames must be positive, not \(maxFrames)") }
        if let size, parseSize(size) == nil { throw ValidationError("--size must be WIDTHxHEIGHT, not '\(size)'") }
    }

    func run() throws {
        let shutdown = ShutdownSignal.shared
        shutdown.install(finalizing: true)
        let gate = InterruptGate()
        shutdown.onSignal { gate.stop() }
        let target = size.flatMap(parseSize)
        let spec = source.spec

        let (written, stopReason) = try runReporting { () throws -> (Int, String?) in
            let decoder = try VideoDecoder(spec, options: DecodeOptions(width: target?.width, height: target?.height),
                                           gate: gate)
            let (width, height) = (target?.width ?? decoder.stream.width, target?.height ?? decoder.stream.height)
            if width % 2 == 1 || height % 2 == 1 {
                printError("note: \(width)x\(height) is recorded as \(width & ~1)x\(height & ~1): 4:2:0 color needs even sizes")
            }
            let encoder = try VideoEncoder(
                path: output, width: width, height: height,
                frameRate: decoder.stream.fps ?? 25,
                settings: EncoderSettings(codecs: codecs.split(separator: ",").map(String.init)))
            let progress = Progress(enabled: isatty(STDERR_FILENO) == 1 && !json)
            var stopReason: String?
            do {
                while shutdown.caughtSignal == nil, maxFrames.map({ encoder.framesWritten < $0 }) ?? true,
                      let frame = try decoder.next() {
                    try encoder.append(frame)
                    progress.update("recorded \(encoder.framesWritten) frames")
                }
            } catch let error as MediaError {
                // Keep what was recorded: finish the file, then report.
                if case .cancelled = error {} else { stopReason = error.description }
            }
            progress.clear()
            try encoder.finish()
            return (encoder.framesWritten, stopReason)
        }
        if json {
            print(try jsonString(RecordSummary(output: output, frames: written, error: stopReason)))
        } else {
            FileHandle.standardError.write(Data("wrote \(written) frames to \(output)\n".utf8))
        }
        if let stopReason {
            printError(stopReason)
            throw ExitCode(1)
        }
    }
}

struct RecordSummary: Codable {
    var output: String
    var frames: Int
    var error: String?
}
