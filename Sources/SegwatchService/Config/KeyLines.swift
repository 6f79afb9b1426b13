import Foundation

/// Where each key of a TOML file is written: the line of every `key = value` under its table.
///
/// TOMLKit reports positions for syntax errors only, and its tables forget where a value came
/// from, so a wrong type or an unknown key would have no line. This scan of the text gives
/// them one: tables are named as the config reader names them (`engine`, `camera[2]`,
/// `engine.generator`), arrays of tables counted from 1 in file order. It follows TOML only as
/// far as that needs: headers, keys (bare, quoted, dotted: the first part), and multi-line
/// strings and arrays skipped.
struct KeyLines: Sendable {
    /// `table path → key → line`, lines from 1.
    private var lines: [String: [String: Int]] = [:]
    /// `table path → line of its header`.
    private var headers: [String: Int] = [:]

    init(_ text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var inMultilineString: String?  // the closing delimiter
        var bracketDepth = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            var line = Substring(raw)
            if let closing = inMultilineString {
                guard let end = line.range(of: closing) else { continue }
                inMultilineString = nil
                line = line[end.upperBound...]
                continue
            }
            if bracketDepth > 0 {
                bracketDepth += Self.bracketBalance(line)
                continue
            }
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("[[") {
                let name = Self.headerName(trimmed.dropFirst(2))
                arrayCounts[name, default: 0] += 1
                table = "\(name)[\(arrayCounts[name]!)]"
                headers[table] = number
                continue
            }
            if trimmed.hasPrefix("[") {
                let name = Self.headerName(trimmed.dropFirst())
                // A sub-table of the latest element of an array of tables: `[camera.outputs]`.
                let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
                if parts.count == 2, let count = arrayCounts[parts[0]] { table = "\(parts[0])[\(count)].\(parts[1])" } else { table = name }
                headers[table] = number
                continue
            }
            guard let key = Self.key(trimmed) else { continue }
            if lines[table]?[key] == nil { lines[table, default: [:]][key] = number }
            // What follows `=`: a multi-line string or array continues on the next lines.
            guard let equals = trimmed.firstIndex(of: "=") else { continue }
            let value = trimmed[trimmed.index(after: equals)...].drop { $0 == " " || $0 == "\t" }
            for delimiter in ["\"\"\"", "'''"] where value.hasPrefix(delimiter) {
                if value.dropFirst(3).range(of: delimiter) == nil { inMultilineString = delimiter }
            }
            if value.hasPrefix("[") { bracketDepth = max(0, Self.bracketBalance(value)) }
        }
    }

    /// The line of `key` in `table` (nil where the text does not say).
    func line(of key: String, in table: String) -> Int? { lines[table]?[key] }

    /// The line of `table`'s header, if it has one.
    func header(of table: String) -> Int? { headers[table] }

    /// `name]` or `name]]` with spaces and quotes taken off.
    private static func headerName(_ text: Substring) -> String {
        let name = text.prefix { $0 != "]" }.trimmingCharacters(in: .whitespaces)
        return name.split(separator: ".").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
            .joined(separator: ".")
    }

    /// The (first part of the) key a `key = value` line sets, or nil for anything else.
    private static func key(_ line: Substring) -> String? {
        guard let first = line.first, first != "#" else { return nil }
        if first == "\"" || first == "'" {
            let rest = line.dropFirst()
            guard let end = rest.firstIndex(of: first) else { return nil }
            return String(rest[..<end])
        }
        let key = line.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        let after = line[key.endIndex...].drop { $0 == " " || $0 == "\t" }
        guard !key.isEmpty, after.first == "=" || after.first == "." else { return nil }
        return String(key)
    }

    /// Opening minus closing brackets outside strings and comments.
    private static func bracketBalance(_ text: Substring) -> Int {
        var balance = 0
        var quote: Character?
        for character in text {
            if let open = quote {
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "\"", "'": quote = character
            case "#": return balance
            case "[": balance += 1
            case "]": balance -= 1
            default: break
            }
        }
        return balance
    }
}
