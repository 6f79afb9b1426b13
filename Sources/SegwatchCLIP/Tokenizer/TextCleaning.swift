/// The reference text cleaning of open_clip's `SimpleTokenizer` (clean='lower'):
///
///     whitespace_clean(basic_clean(text)).lower()
///     basic_clean(text)      = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
///     whitespace_clean(text) = " ".join(text.split()).strip()
///
/// with ftfy 6.3.1's default `fix_text` (Ftfy.swift), Python's `html.unescape`
/// (HTMLUnescape.swift), and Python's `str.split()` and `str.lower()` (below), all on Unicode
/// scalars, as Python works on code points.
public func cleanText(_ text: String) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: cleanScalars(Array(text.unicodeScalars)))
    return String(view)
}

/// `cleanText` on scalars.
func cleanScalars(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var s = Ftfy.fixText(text)
    s = HTMLUnescape.pythonUnescape(HTMLUnescape.pythonUnescape(s))
    s = PythonText.splitJoin(s)
    return PythonText.lower(s)
}

/// Python `str` behaviour the cleaning relies on (Python 3.11, Unicode 14.0).
enum PythonText {
    /// `str.isspace()` (also `str.split()`, `str.strip()` and `re`'s `\s`): bidirectional class
    /// WS, B or S, or category Zs.
    @inline(__always)
    static func isSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `re`'s `\w` on `str`: `str.isalnum()` (letters, and characters with a numeric value) or `_`.
    static func isWordChar(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        guard let c = Unicode.Scalar(v) else { return false }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return true
        default:
            return c.properties.numericType != nil
        }
    }

    /// `" ".join(text.split())` (which also strips).
    static func splitJoin(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var pendingSpace = false
        for c in text {
            if isSpace(c.value) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace {
                    out.append(" ")
                    pendingSpace = false
                }
                out.append(c)
            }
        }
        return out
    }

    /// `str.lower()`: the full lowercase mapping of every code point (SpecialCasing's
    /// unconditional mappings, so `İ` -> `i̇`; Python's Unicode 14.0 data, from
    /// UnicodeTables.swift), and the Final_Sigma rule for `Σ`.
    static func lower(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for (i, c) in text.enumerated() {
            let v = c.value
            if v < 0x80 {
                out.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(v + 0x20)! : c)
            } else if v == 0x3A3 {
                out.append(isFinalSigma(text, at: i) ? "\u{3C2}" : "\u{3C3}")
            } else if let mapped = UnicodeLookup.lowercase[v] {
                out += mapped
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// CPython's `handle_capital_sigma`: `\p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased})`.
    private static func isFinalSigma(_ text: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0, UnicodeLookup.isCaseIgnorable(text[j]) { j -= 1 }
        guard j >= 0, UnicodeLookup.isCased(text[j]) else { return false }
        j = i + 1
        while j < text.count, UnicodeLookup.isCaseIgnorable(text[j]) { j += 1 }
        return j == text.count || !UnicodeLookup.isCased(text[j])
    }
}
