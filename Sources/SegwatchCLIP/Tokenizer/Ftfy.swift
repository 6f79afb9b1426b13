import Foundation

/// ftfy 6.3.1's `fix_text` with its default configuration, on Unicode scalars: what open_clip's
/// cleaning runs first. Ported from ftfy's `__init__.py` and `fixes.py` (Apache License 2.0);
/// the mojibake repair is in FtfyFixEncoding.swift.
enum Ftfy {
    /// ftfy's `TextFixerConfig.max_decode_length`.
    static let maxDecodeLength = 1_000_000

    /// `ftfy.fix_text(text)`: the text is fixed in segments that end after each `\n`; HTML
    /// unescaping ("auto") is switched off for good from the first segment that contains `<`.
    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var unescapeHTML = true
        var pos = 0
        let n = text.count
        while pos < n {
            var end = pos
            while end < n, text[end] != "\n" { end += 1 }
            end = end < n ? end + 1 : n
            if end - pos > maxDecodeLength { end = pos + maxDecodeLength }
            let segment = Array(text[pos..<end])
            if unescapeHTML, segment.contains("<") { unescapeHTML = false }
            out += fixSegment(segment, unescapeHTML: unescapeHTML)
            pos = end
        }
        return out
    }

    /// `fix_and_explain(segment)`: every fixer in ftfy's order, until the text stops changing.
    static func fixSegment(_ segment: [Unicode.Scalar], unescapeHTML: Bool) -> [Unicode.Scalar] {
        var text = segment
        while true {
            let original = text
            if unescapeHTML { text = HTMLUnescape.ftfyUnescape(text) }
            text = FtfyFixEncoding.fixEncoding(text)
            text = fixC1Controls(text)
            text = fixLatinLigatures(text)
            text = fixCharacterWidth(text)
            text = uncurlQuotes(text)
            text = fixLineBreaks(text)
            // fix_surrogates: a Swift string holds no surrogate code points.
            text = removeTerminalEscapes(text)
            text = removeControlChars(text)
            text = nfc(text)
            if text == original { return text }
        }
    }

    // MARK: the simple fixers

    /// `fix_c1_controls`: each U+0080...U+009F read as its sloppy Windows-1252 byte (browsers do
    /// the same); U+0081, U+008D, U+008F, U+0090, U+009D have no such character and stay.
    static func fixC1Controls(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value >= 0x80 && $0.value <= 0x9F }) else { return text }
        let table = SingleByteCodec.sloppyWindows1252
        return text.map { c in
            c.value >= 0x80 && c.value <= 0x9F ? table.decode(UInt8(c.value)) : c
        }
    }

    static let ligatures: [UInt32: [Unicode.Scalar]] = expansionTable(FtfyTables.ligatures)
    static let widthMap: [UInt32: [Unicode.Scalar]] = expansionTable(FtfyTables.widthMap)

    /// `fix_latin_ligatures`: `ﬁ` -> `fi`, `Ǆ` -> `DŽ`, ...
    static func fixLatinLigatures(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        translate(text, ligatures, when: { ($0 >= 0x132 && $0 <= 0x1F3) || ($0 >= 0xFB00 && $0 <= 0xFB06) })
    }

    /// `fix_character_width`: U+3000 -> space, U+FF01...U+FFEF -> their NFKC form.
    static func fixCharacterWidth(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        translate(text, widthMap, when: { $0 == 0x3000 || ($0 >= 0xFF01 && $0 <= 0xFFEF) })
    }

    /// `uncurl_quotes`: U+2018...U+201B and U+02BC -> `'`, U+201C...U+201F -> `"`.
    static func uncurlQuotes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.map { c in
            switch c.value {
            case 0x2018...0x201B, 0x2BC: return "'"
            case 0x201C...0x201F: return "\""
            default: return c
            }
        }
    }

    /// `fix_line_breaks`: CR LF, CR, U+2028, U+2029 and U+0085 -> LF.
    static func fixLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            switch text[i].value {
            case 0x0D:
                out.append("\n")
                if i + 1 < text.count, text[i + 1] == "\n" { i += 1 }
            case 0x2028, 0x2029, 0x85:
                out.append("\n")
            default:
                out.append(text[i])
            }
            i += 1
        }
        return out
    }

    /// `remove_terminal_escapes`: `\x1b\[((?:\d|;)*)([a-zA-Z])` removed (`\d`: any decimal digit).
    static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("\u{1B}") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        let n = text.count
        while i < n {
            if text[i] == "\u{1B}", i + 1 < n, text[i + 1] == "[" {
                var k = i + 2
                while k < n, text[k] == ";" || text[k].properties.generalCategory == .decimalNumber { k += 1 }
                if k < n, isASCIILetter(text[k].value) {
                    i = k + 1
                    continue
                }
            }
            out.append(text[i])
            i += 1
        }
        return out
    }

    /// `remove_control_chars`: U+0000...0008, 000B, 000E...001F, 007F, 206A...206F, FEFF and
    /// FFF9...FFFC are removed.
    static func removeControlChars(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        text.filter { c in
            switch c.value {
            case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return false
            default: return true
            }
        }
    }

    /// Unicode NFC. Text without a scalar from U+0300 up is already NFC. The standard library's
    /// normalizer (the one String comparison uses): Foundation's `precomposedStringWithCanonicalMapping`
    /// needs ICU, which segwatch-gpu-bench does not link.
    static func nfc(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value >= 0x300 }) else { return text }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text)
        return Array(String(decoding: String(view)._nfcCodeUnits, as: UTF8.self).unicodeScalars)
    }

    // MARK: helpers

    private static func expansionTable(_ flat: [UInt32]) -> [UInt32: [Unicode.Scalar]] {
        var table: [UInt32: [Unicode.Scalar]] = [:]
        var k = 0
        while k < flat.count {
            let count = Int(flat[k + 1])
            table[flat[k]] = flat[(k + 2)..<(k + 2 + count)].map { Unicode.Scalar($0)! }
            k += 2 + count
        }
        return table
    }

    private static func translate(_ text: [Unicode.Scalar], _ table: [UInt32: [Unicode.Scalar]],
                                  when candidate: (UInt32) -> Bool) -> [Unicode.Scalar] {
        guard text.contains(where: { candidate($0.value) }) else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for c in text {
            if candidate(c.value), let replacement = table[c.value] {
                out += replacement
            } else {
                out.append(c)
            }
        }
        return out
    }

    @inline(__always) private static func isASCIILetter(_ v: UInt32) -> Bool {
        (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A)
    }
}
