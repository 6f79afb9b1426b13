import Foundation
import SegwatchService

/// `run --profile FILE`: settings from a file, in a small subset of TOML (`key = value` lines,
/// `#` comments; strings in double quotes, numbers, true/false, arrays of strings). The keys are
/// `run`'s long options without the dashes; flags on the command line win over the file.
///
/// The file becomes options placed before the command line's own, so ArgumentParser checks
/// every value, with the same bounds and messages as a flag, and a later flag overrides it.
struct Profile {
    /// `run`'s options a profile may set.
    static let keys: Set<String> = [
        "sam", "clip", "clip-size", "head", "crop-weight", "top-k", "min-score", "min-cosine", "threads",
        "points-per-side", "points-per-batch", "pred-iou-thresh", "stability-score-thresh", "stability-score-offset",
        "box-nms-thresh", "crop-n-layers", "crop-nms-thresh", "crop-overlap-ratio", "crop-n-points-downscale-factor",
        "min-mask-region-area", "label", "vocab", "template", "templates", "cache", "no-cache",
        "fps", "max-frames", "max-age", "keyframe-every", "discovery-grid", "tracked-min-iou", "keyframe-below-iou",
        "stuff", "source-name", "json-out", "video-out", "events-socket", "font", "give-up-after", "state-dir",
        "rtsp-transport", "open-timeout", "read-timeout", "camera-size", "camera-fps", "camera-pixel-format", "ffmpeg-log",
    ]

    let path: String
    /// The settings as command-line options, in the file's order.
    let arguments: [String]

    init(contentsOf path: String) throws {
        self.path = path
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw CommandError("\(path): cannot read the profile (a UTF-8 text file of `key = value` lines is expected)")
        }
        var arguments: [String] = [], seen: Set<String> = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            func fail(_ message: String) -> CommandError { CommandError("\(path):\(number + 1): \(message)") }
            let line = Self.withoutComment(raw).trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { continue }
            guard let equals = line.firstIndex(of: "=") else { throw fail("expected `key = value`, got '\(line)'") }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard Self.keys.contains(key) else {
                throw fail("unknown key '\(key)'; a profile sets these options of `segwatch run`: \(Self.keys.sorted().joined(separator: ", "))")
            }
            guard seen.insert(key).inserted else { throw fail("'\(key)' is set twice") }
            for item in try Self.values(value, fail: fail) {
                switch item {
                case "true": arguments.append("--\(key)")
                case "false": continue
                // One token, so a value such as -1 is not taken for an option.
                default: arguments.append("--\(key)=\(item)")
                }
            }
        }
        self.arguments = arguments
    }

    /// The line up to a `#` that is not inside a string.
    private static func withoutComment(_ line: Substring) -> Substring {
        var quoted = false, escaped = false
        for index in line.indices {
            let c = line[index]
            if escaped { escaped = false; continue }
            if c == "\\" && quoted { escaped = true } else if c == "\"" { quoted.toggle() } else if c == "#" && !quoted { return line[..<index] }
        }
        return line
    }

    /// A value as option arguments: a string, a number, true/false, or an array of strings.
    private static func values(_ text: String, fail: (String) -> CommandError) throws -> [String] {
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else { throw fail("an array ends with ']'") }
            var items: [String] = [], rest = Substring(text.dropFirst().dropLast())
            while true {
                rest = rest.drop { $0 == " " || $0 == "\t" }
                if rest.isEmpty { break }
                let (item, after) = try string(rest, fail: fail)
                items.append(item)
                rest = after.drop { $0 == " " || $0 == "\t" }
                if rest.isEmpty { break }
                guard rest.first == "," else { throw fail("array items are separated by commas") }
                rest = rest.dropFirst()
            }
            return items
        }
        if text.hasPrefix("\"") {
            let (item, after) = try string(Substring(text), fail: fail)
            guard after.allSatisfy({ $0 == " " || $0 == "\t" }) else { throw fail("unexpected '\(after)' after the string") }
            return [item]
        }
        if text == "true" || text == "false" || Double(text) != nil { return [text] }
        throw fail("'\(text)' is not a value: strings are in double quotes, numbers plain, flags true or false")
    }

    /// The string at the start of `text` and what follows it.
    private static func string(_ text: Substring, fail: (String) -> CommandError) throws -> (String, Substring) {
        guard text.first == "\"" else { throw fail("expected a string in double quotes at '\(text)'") }
        var result = "", escaped = false
        for index in text.indices.dropFirst() {
            let c = text[index]
            if escaped {
                switch c {
                case "n": result.append("\n")
                case "t": result.append("\t")
                case "\"", "\\": result.append(c)
                default: throw fail("unknown escape '\\\(c)'")
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "\"" {
                return (result, text[text.index(after: index)...])
            } else {
                result.append(c)
            }
        }
        throw fail("a string is not closed")
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
