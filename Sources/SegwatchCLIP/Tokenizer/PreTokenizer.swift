/// CLIP's pre-tokenization, hand-written: open_clip's
///
///     <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
///
/// run with `regex.findall(..., IGNORECASE)` (the `regex` module, 2026.11.19) over the cleaned
/// text. At each position the first alternative that matches wins; a position where none
/// matches (whitespace) is skipped. With IGNORECASE the literals also match their case variants
/// (`'S`, and U+017F LONG S for `s`: `'ſ` is a contraction piece, and `<ſtart_of_text>` one
/// ordinary piece, since only the exact spelling is the special token), and U+0345 COMBINING
/// GREEK YPOGEGRAMMENI, which case-folds to a letter, matches neither `[\p{L}]` nor the negated
/// class: it is skipped like whitespace and splits a word.
enum PreTokenizer {
    enum Piece: Equatable {
        /// `<start_of_text>` (0) or `<end_of_text>` (1), exactly as open_clip spells them.
        case special(Int)
        /// An ordinary piece: these scalars of the text.
        case text(Range<Int>)
    }

    private static let specials: [[Unicode.Scalar]] = [
        Array("<start_of_text>".unicodeScalars), Array("<end_of_text>".unicodeScalars),
    ]
    private static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map {
        Array($0.unicodeScalars)
    }

    static func split(_ text: [Unicode.Scalar]) -> [Piece] {
        var pieces: [Piece] = []
        let n = text.count
        var i = 0
        scan: while i < n {
            let c = text[i]
            if c == "<" {
                for (index, special) in specials.enumerated() where matchesIgnoringCase(text, at: i, special) {
                    // open_clip's BPE cache holds the exact spellings only; a case variant the
                    // pattern matched (`<ſtart_of_text>`) is one ordinary piece.
                    let range = i..<(i + special.count)
                    pieces.append(text[range].elementsEqual(special) ? .special(index) : .text(range))
                    i += special.count
                    continue scan
                }
            }
            if c == "'" {
                for contraction in contractions where matchesIgnoringCase(text, at: i + 1, contraction) {
                    pieces.append(.text(i..<(i + 1 + contraction.count)))
                    i += 1 + contraction.count
                    continue scan
                }
            }
            switch kind(c) {
            case .letter:
                var j = i + 1
                while j < n, kind(text[j]) == .letter { j += 1 }
                pieces.append(.text(i..<j))
                i = j
            case .number:
                pieces.append(.text(i..<(i + 1)))
                i += 1
            case .other:
                var j = i + 1
                while j < n, kind(text[j]) == .other { j += 1 }
                pieces.append(.text(i..<j))
                i = j
            case .none:
                i += 1
            }
        }
        return pieces
    }

    enum Kind { case letter, number, other, none }

    /// Which class a scalar falls in: `\p{L}`, `\p{N}`, `[^\s\p{L}\p{N}]`, or none (`\s`, U+0345),
    /// as the reference's `regex` module decides (UnicodeTables.swift).
    @inline(__always)
    static func kind(_ c: Unicode.Scalar) -> Kind {
        let v = c.value
        if v < 0x80 {
            if (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) { return .letter }
            if v >= 0x30 && v <= 0x39 { return .number }
            if (v >= 0x09 && v <= 0x0D) || v == 0x20 { return .none }
            return .other
        }
        switch UnicodeLookup.pretokenizerClass(v) {
        case 0: return .letter
        case 1: return .number
        case 2: return .other
        default: return .none
        }
    }

    /// Whether `literal` (lowercase ASCII and punctuation) occurs at `i`, with the `regex`
    /// module's IGNORECASE equivalences (ASCII case; `s` also matches U+017F).
    private static func matchesIgnoringCase(_ text: [Unicode.Scalar], at i: Int, _ literal: [Unicode.Scalar]) -> Bool {
        guard i + literal.count <= text.count else { return false }
        for (k, l) in literal.enumerated() {
            let c = text[i + k].value
            if c == l.value { continue }
            if l.value >= 0x61 && l.value <= 0x7A {
                if c == l.value - 0x20 { continue }
                if l == "s" && c == 0x17F { continue }
            }
            return false
        }
        return true
    }
}
