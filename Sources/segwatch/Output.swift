import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchMedia
import SegwatchCLIP
import SegwatchPipeline
import SegwatchSAM

/// Writes one line to stderr, prefixed with the program's name.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("segwatch: \(message)\n".utf8))
}

/// Encodes `value` as one line of JSON with sorted keys.
func jsonString(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// A label index's name in the outputs; nil (below the thresholds) is "unknown".
func labelName(_ label: Int?, _ names: [String]) -> String {
    label.map { names[$0] } ?? "unknown"
}

/// A segment's text on overlays: its label and score ("car 0.87"), or "unknown".
func overlayText(_ result: Classification?, _ names: [String]) -> String {
    guard let result, let label = result.label else { return "unknown" }
    return String(format: "%@ %.2f", names[label], result.score)
}

/// A score or probability as the JSON outputs give it: four decimals.
func fourDecimals(_ value: some BinaryFloatingPoint) -> Double {
    (Double(value) * 10000).rounded() / 10000
}

/// An error segwatch's libraries raise about the user's input: its description names the input
/// and what was expected, so it is shown as it is.
protocol InputError: Error, CustomStringConvertible {}

extension MediaError: InputError {}
extension CheckpointError: InputError {}
extension SamError: InputError {}
extension CLIPError: InputError {}
extension CLIPTokenizerError: InputError {}
extension VocabularyError: InputError {}
extension PipelineError: InputError {}

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

    func clear() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
