import SegwatchBackends
import SegwatchVulkan
import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchMedia
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchPipeline
import SegwatchSAM
import SegwatchService
import SegwatchStore
import SegwatchUSE

/// Writes one line to stderr, prefixed with the program's name.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("segwatch: \(message)\n".utf8))
}

/// An error segwatch's libraries raise about the user's input: its description names the input
/// and what was expected, so it is shown as it is.
protocol InputError: Error, CustomStringConvertible {}

extension MediaError: InputError {}
extension CheckpointError: InputError {}
extension SamError: InputError {}
extension CLIPError: InputError {}
extension DINOv2Error: InputError {}
extension USEError: InputError {}
extension CLIPTokenizerError: InputError {}
extension VocabularyError: InputError {}
extension PipelineError: InputError {}
extension StoreError: InputError {}
extension ServiceError: InputError {}
extension HTTPRefusal: InputError {}
extension ModelError: InputError {}
extension BackendError: InputError {}
extension VulkanError: InputError {}

/// A command's own complaint about its input (files that do not fit together).
struct CommandError: InputError {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`; an `InputError` becomes one clear line on stderr and exit status 1.
func runReporting<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as any InputError {
        printError(error.description)
        throw ExitCode(1)
    }
}

/// `runReporting` for async work.
func runReporting<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as any InputError {
        printError(error.description)
        throw ExitCode(1)
    }
}

/// Writes `value` as JSON to `path` atomically.
func writeJSON(_ value: some Encodable, to path: String) throws {
    let encoder = JSONEncoder()
    // Sorted: the same result is the same bytes (Swift's key order changes run to run).
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    do {
        try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CheckpointError.unwritable(file: path, reason: error.localizedDescription)
    }
}

/// A one-line progress display on stderr, redrawn at most a few times a second.
final class Progress {
    private let enabled: Bool
    private var last = Date.distantPast
    private let start = Date()

    init(enabled: Bool) { self.enabled = enabled }

    /// On when stderr is a terminal: a log file gets no carriage-return animation.
    static func onTerminal() -> Progress { Progress(enabled: isatty(STDERR_FILENO) == 1) }

    func update(_ text: @autoclosure () -> String) {
        guard enabled, Date().timeIntervalSince(last) > 0.2 else { return }
        last = Date()
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text())".utf8))
    }

    /// `title [#######.............] done/total unit, detail, M:SS left`.
    func bar(_ title: String, done: Int, total: Int, unit: String, detail: String = "") {
        update({
            let fraction = total > 0 ? Double(min(done, total)) / Double(total) : 1
            let filled = Int(fraction * 30)
            let elapsed = Date().timeIntervalSince(start)
            var line = (title.isEmpty ? "" : title + " ") + "[" + String(repeating: "#", count: filled)
                + String(repeating: ".", count: 30 - filled) + "] \(done)/\(total) \(unit)"
            if !detail.isEmpty { line += ", " + detail }
            if done > 0, done < total {
                let left = Int(elapsed / Double(done) * Double(total - done))
                line += String(format: ", %d:%02d left", left / 60, left % 60)
            }
            return line
        }())
    }

    /// A stream's progress: a bar over the analyzed frames a file will give (`--max-frames`
    /// included), else a count.
    func show(_ stream: StreamProgress) {
        let rate = String(format: "%d analyzed (%.2f/s), %d tracks live", stream.analyzed,
                          Double(stream.analyzed) / max(stream.seconds, 1e-9), stream.liveTracks)
        guard let expected = stream.expectedAnalyzed, expected > 0 else { return update("frame \(stream.decoded), " + rate) }
        bar("", done: min(stream.analyzed, expected), total: expected, unit: "analyzed frames",
            detail: String(format: "frame %d, %.2f analyzed/s, %d tracks live", stream.decoded,
                           Double(stream.analyzed) / max(stream.seconds, 1e-9), stream.liveTracks))
    }

    func clear() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
