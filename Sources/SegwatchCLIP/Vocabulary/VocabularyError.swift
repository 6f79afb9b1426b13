import SegwatchCheckpoint

/// What can be wrong with a vocabulary or its templates, naming the label, line or file.
public enum VocabularyError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case emptyFile(path: String)
    case unreadable(path: String, reason: String)
    /// A label, or one of its `|` synonyms, with nothing in it.
    case emptyLabel(origin: String, text: String)
    case duplicate(name: String, first: String, again: String)
    case noTemplates
    case templateWithoutSlot(origin: String, template: String)
    /// A prompt longer than the text tower's context (start and end of text included).
    case tooLong(origin: String, label: String, prompt: String, tokens: Int, context: Int)

    public var description: String {
        switch self {
        case .empty:
            return "the vocabulary is empty: give at least one --label, or a --vocab file with one label per line"
        case let .emptyFile(path):
            return "\(path): no labels in the file (one per line, synonyms separated by |, # starts a comment)"
        case let .unreadable(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .emptyLabel(origin, text):
            return "\(origin): \(quoted(text)) has an empty label or synonym; expected words, with synonyms separated by | (car|automobile)"
        case let .duplicate(name, first, again):
            return "\(again): the label \(quoted(name)) is already named at \(first); each label once (put synonyms after |)"
        case .noTemplates:
            return "no prompt templates: give at least one, with {} where the label goes"
        case let .templateWithoutSlot(origin, template):
            return "\(origin): the template \(quoted(template)) has no {} where the label goes"
        case let .tooLong(origin, label, prompt, tokens, context):
            return "\(origin): the label \(quoted(label)) makes the prompt \(quoted(prompt)) \(tokens) tokens long; "
                + "the model's context holds \(context), start and end of text included"
        }
    }
}
