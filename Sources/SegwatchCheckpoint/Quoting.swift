/// `text` as an error message quotes it: in single quotes, on one line (control characters
/// escaped, `\n` for a newline), at most `limit` characters with the length of what was cut,
/// so that a 100 KB label does not give 100 KB of stderr and a name read from a file cannot
/// break the message over lines.
public func quoted(_ text: some StringProtocol, limit: Int = 200) -> String {
    var escaped = ""
    for scalar in text.prefix(limit).unicodeScalars {
        switch scalar {
        case "\n": escaped += "\\n"
        case "\r": escaped += "\\r"
        case "\t": escaped += "\\t"
        case _ where scalar.properties.generalCategory == .control: escaped += "\\u{\(String(scalar.value, radix: 16))}"
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return text.count > limit ? "'\(escaped)…' (\(text.count) characters)" : "'\(escaped)'"
}
