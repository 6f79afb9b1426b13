import Foundation
import SegwatchService

/// `run --profile FILE`: settings from a TOML file, one `key = value` per option, the keys
/// being `run`'s long options without the dashes; flags on the command line win over the file.
///
/// The file becomes options placed before the command line's own, so ArgumentParser checks
/// every value, with the same bounds and messages as a flag, and a later flag overrides it.
/// Each key's TOML type is checked first (`fps = true` is not a number), with its line.
struct Profile {
    /// What a key's value is.
    enum Kind {
        case number, string, strings, flag
        /// A flag with a `--no-` form: true gives `--KEY`, false `--no-KEY`.
        case invertible
    }

    /// `run`'s options a profile may set.
    static let kinds: [String: Kind] = {
        var kinds: [String: Kind] = [:]
        for key in ["clip-size", "crop-weight", "top-k", "min-score", "min-cosine", "threads", "points-per-side", "points-per-batch",
                    "pred-iou-thresh", "stability-score-thresh", "stability-score-offset", "box-nms-thresh", "crop-n-layers",
                    "crop-nms-thresh", "crop-overlap-ratio", "crop-n-points-downscale-factor", "min-mask-region-area", "fps",
                    "max-frames", "max-age", "keyframe-every", "keyframe-slices", "discovery-grid", "tracked-min-iou", "keyframe-below-iou",
                    "give-up-after", "open-timeout", "read-timeout", "camera-fps", "video-segment-minutes", "device"] { kinds[key] = .number }
        for key in ["sam", "clip", "head", "vocab", "templates", "cache", "source-name", "json-out", "video-out", "events-socket",
                    "font", "state-dir", "rtsp-transport", "camera-size", "camera-pixel-format", "backend", "precision"] { kinds[key] = .string }
        for key in ["label", "template", "stuff"] { kinds[key] = .strings }
        for key in ["no-cache", "ffmpeg-log", "embed-every-frame", "keyframe-track-prompts"] { kinds[key] = .flag }
        kinds["background"] = .invertible
        return kinds
    }()

    static var keys: Set<String> { Set(kinds.keys) }

    let path: String
    /// The settings as command-line options, in the file's order.
    let arguments: [String]

    init(contentsOf path: String) throws {
        self.path = path
        var arguments: [String] = []
        for (key, value, line) in try readSettings(path, what: "profile") {
            func fail(_ message: String) -> ConfigError { ConfigError(file: path, line: line, message: message) }
            guard let kind = Self.kinds[key] else {
                throw fail("unknown key '\(key)'; a profile sets these options of `segwatch run`: \(Self.kinds.keys.sorted().joined(separator: ", "))")
            }
            switch (kind, value) {
            case let (.number, .integer(number)): arguments.append("--\(key)=\(number)")
            case let (.number, .number(number)): arguments.append("--\(key)=\(number)")
            case let (.string, .string(text)): arguments.append("--\(key)=\(text)")
            case let (.strings, .string(text)): arguments.append("--\(key)=\(text)")
            case let (.strings, .strings(items)): arguments += items.map { "--\(key)=\($0)" }
            case let (.flag, .bool(on)): if on { arguments.append("--\(key)") }
            case let (.invertible, .bool(on)): arguments.append(on ? "--\(key)" : "--no-\(key)")
            default:
                let expected = switch kind {
                case .number: "a number"
                case .string: "a string in double quotes"
                case .strings: "a string or an array of strings"
                case .flag, .invertible: "true or false"
                }
                throw fail("'\(key)' takes \(expected), not \(value.description)")
            }
        }
        self.arguments = arguments
    }

    /// `arguments` with a `run ... --profile FILE ...` replaced by the file's options followed by
    /// the rest, so the command line wins.
    static func expand(_ arguments: [String]) throws -> [String] {
        guard arguments.first == "run" else { return arguments }
        var rest = Array(arguments.dropFirst()), profiles: [String] = []
        while let index = rest.firstIndex(where: { $0 == "--profile" || $0.hasPrefix("--profile=") }) {
            if rest[index] == "--profile" {
                guard index + 1 < rest.count else { throw CommandError("--profile needs a file") }
                profiles.append(rest[index + 1])
                rest.removeSubrange(index...(index + 1))
            } else {
                profiles.append(String(rest[index].dropFirst("--profile=".count)))
                rest.remove(at: index)
            }
        }
        let settings = try profiles.flatMap { try Profile(contentsOf: $0).arguments }
        return ["run"] + settings + rest
    }
}
