import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchService

/// `segwatch config`: the daemon's configuration file.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the configuration file of `segwatch serve`.",
        subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a configuration file without starting anything.",
            discussion: """
                Reads the file as `segwatch serve` does: every table and key with its type and \
                bounds, the ${NAME} secrets (from the environment or systemd's credentials), the \
                models (a path that exists, or a catalog name), each camera's labels or vocabulary \
                file, and the folders of its outputs. A mistake is reported as FILE:LINE: what was \
                expected, with exit status 1; a good file prints a summary of the cameras. \
                systemd/segwatch.toml documents every key.
                """)

        @Argument(help: "The configuration file, e.g. /etc/segwatch/segwatch.toml.")
        var file: String

        func run() throws {
            try runReporting {
                let config = try ServiceConfig.load(file)
                var notes: [String] = []
                var models: [(ModelEntry.Kind, String)] = [(.sam, config.engine.sam), (.clip, config.engine.clip)]
                if let dino = config.engine.dino { models.append((.dino, dino)) }
                for (kind, value) in models {
                    do {
                        let path = try ModelCache.standard.resolve(value, kind: kind)
                        guard FileManager.default.fileExists(atPath: path) else {
                            throw CommandError("\(file): [engine] \(kind.rawValue): \(quoted(value)) is neither a file nor a model name (`segwatch models list` shows the names)")
                        }
                    } catch let error as ModelError {
                        guard case .notFetched = error else { throw CommandError("\(file): [engine]: \(error)") }
                        notes.append("\(value) is not fetched yet: run `segwatch models fetch \(value)` before serving")
                    }
                }
                for camera in config.cameras {
                    do {
                        if let vocab = camera.vocab { _ = try Vocabulary(file: vocab) }
                        _ = try Vocabulary(arguments: camera.labels.isEmpty ? ["placeholder"] : camera.labels)
                        if let templates = camera.templates { _ = try PromptTemplates(templates) }
                    } catch {
                        throw CommandError("\(file): camera \(camera.name): \(error)")
                    }
                    for output in [camera.jsonOut, camera.eventsSocket].compactMap({ $0 }) {
                        let folder = (output as NSString).deletingLastPathComponent
                        var isFolder: ObjCBool = false
                        if !folder.isEmpty, !(FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue) {
                            notes.append("camera \(camera.name): the folder \(folder) does not exist yet (systemd's LogsDirectory=/RuntimeDirectory= make it)")
                        }
                    }
                }
                let cameras = config.cameras.map { "\($0.name)\($0.enabled ? "" : " (disabled)") \($0.input.redacted)" }
                print("\(file): ok: \(config.cameras.count) camera\(config.cameras.count == 1 ? "" : "s"); models \(config.engine.sam) and "
                    + "\(config.engine.clip) on \(config.engine.threads) threads; HTTP API on \(config.http.listen)")
                for camera in cameras { print("  \(camera)") }
                for note in notes { print("note: \(note)") }
            }
        }
    }
}

extension ConfigError: InputError {}
