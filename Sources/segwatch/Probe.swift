import ArgumentParser
import Foundation
import SegwatchService
import SegwatchMedia

/// `segwatch probe`: what an input holds.
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an input's streams: codec, size, fps, duration.",
        discussion: """
            With --count-frames every video frame is decoded and counted exactly, like \
            `ffprobe -count_frames`. A damaged input reports the frames it could decode, then \
            the error, and exits with status 1.
            """)

    @OptionGroup var source: InputOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Decode every video frame and report the exact count.")
    var countFrames = false

    func run() throws {
        let report = try runReporting { try MediaProbe.probe(source.spec, countFrames: countFrames) }
        if json {
            print(try jsonString(report))
        } else {
            print(text(report))
        }
        if let error = report.error {
            printError(error)
            throw ExitCode(1)
        }
    }

    private func text(_ report: ProbeReport) -> String {
        var lines = ["\(report.input): \(report.format)"
            + (report.duration.map { ", \(String(format: "%.3f", $0)) s" } ?? "")
            + (report.bitRate.map { ", \($0 / 1000) kb/s" } ?? "")]
        for s in report.streams {
            var parts = ["  stream \(s.index): \(s.type) \(s.codec)"]
            if let w = s.width, let h = s.height { parts.append("\(w)x\(h)") }
            if let fps = s.fps { parts.append(String(format: "%.3f fps", fps)) }
            if let rate = s.sampleRate { parts.append("\(rate) Hz") }
            if let channels = s.channels { parts.append("\(channels) ch") }
            if let d = s.duration { parts.append(String(format: "%.3f s", d)) }
            if let frames = s.frames { parts.append("\(frames) frames") }
            lines.append(parts.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
