// What segments are labeled against: the user's words, each label with its synonyms.
import Foundation
import SegwatchCheckpoint

/// One label: the name it is reported under, and every spelling that describes it (the name
/// first). Its embedding averages all spellings' prompt embeddings.
public struct VocabularyLabel: Sendable, Hashable {
    public let spellings: [String]
    /// Where the label came from, for errors: `vocab.txt:12`, `--label 3`.
    public let origin: String

    public var name: String { spellings[0] }

    /// The label as a vocabulary file spells it, `car|automobile`: what the cache keys it by.
    public var key: String { spellings.joined(separator: "|") }

    /// `car|automobile`: spellings separated by `|`, each trimmed; none may be empty.
    public init(parsing text: String, origin: String) throws(VocabularyError) {
        let spellings = text.split(separator: "|", omittingEmptySubsequences: false).map {
            trimmed($0, \.isWhitespace)
        }
        guard spellings.allSatisfy({ !$0.isEmpty }) else { throw .emptyLabel(origin: origin, text: text) }
        self.spellings = spellings
        self.origin = origin
    }
}

public struct Vocabulary: Sendable {
    public let labels: [VocabularyLabel]

    /// A vocabulary file larger than this is not a list of labels.
    public static let maximumFileBytes = 64 << 20

    /// At least one label, and no name twice (the name is what reports and maps identify a class by).
    public init(_ labels: [VocabularyLabel]) throws(VocabularyError) {
        guard !labels.isEmpty else { throw .empty }
        var seen: [String: String] = [:]
        for label in labels {
            if let first = seen[label.name] { throw .duplicate(name: label.name, first: first, again: label.origin) }
            seen[label.name] = label.origin
        }
        self.labels = labels
    }

    /// `--label` values, in order; each may carry synonyms (`car|automobile`).
    public init(arguments: [String]) throws(VocabularyError) {
        var labels: [VocabularyLabel] = []
        for (i, argument) in arguments.enumerated() {
            labels.append(try VocabularyLabel(parsing: argument, origin: "--label \(i + 1)"))
        }
        try self.init(labels)
    }

    /// A vocabulary file: one label per line, synonyms separated by `|`, `#` starts a comment,
    /// blank lines are skipped.
    public init(file path: String) throws(VocabularyError) {
        var labels: [VocabularyLabel] = []
        for (number, content) in try readListFile(path, maximumBytes: Self.maximumFileBytes) {
            labels.append(try VocabularyLabel(parsing: content, origin: "\(path):\(number)"))
        }
        guard !labels.isEmpty else { throw .emptyFile(path: path) }
        try self.init(labels)
    }
}

/// The lines of a list file that hold something, numbered from 1, with `#` comments and
/// surrounding whitespace removed. The file must be UTF-8 and at most `maximumBytes`.
func readListFile(_ path: String, maximumBytes: Int) throws(VocabularyError) -> [(line: Int, content: String)] {
    let data: Data
    do {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes[.size] as? Int, size > maximumBytes {
            throw VocabularyError.unreadable(path: path, reason: "\(size) bytes; a list file holds at most \(maximumBytes)")
        }
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch let error as VocabularyError {
        throw error
    } catch {
        throw .unreadable(path: path, reason: systemReason(error))
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw .unreadable(path: path, reason: "not UTF-8 text")
    }
    var lines: [(Int, String)] = []
    // `isNewline`, not "\n": Swift reads "\r\n" as one character.
    for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
        let content = trimmed(line.prefix { $0 != "#" }, \.isWhitespace)
        if !content.isEmpty { lines.append((index + 1, content)) }
    }
    return lines
}

/// `text` without the characters `drop` holds at either end.
func trimmed(_ text: Substring, _ drop: (Character) -> Bool) -> String {
    String(text.drop(while: drop).reversed().drop(while: drop).reversed())
}
