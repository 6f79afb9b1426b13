/// The two HTML unescapers of the reference cleaning, on Unicode scalars:
/// Python's `html.unescape` (run twice after ftfy) and ftfy's own, stricter `unescape_html`.
enum HTMLUnescape {
    // MARK: tables

    /// `html.entities.html5`: name (with or without `;`) -> replacement.
    static let html5: [String: [Unicode.Scalar]] = parseTable(HTMLEntityData.html5)

    /// ftfy's `HTML_ENTITIES`, keyed without the `&`: the html5 names that end in `;`, plus the
    /// all-caps spellings ftfy adds (`EACUTE;`).
    static let ftfyEntities: [String: [Unicode.Scalar]] = {
        var table = html5.filter { $0.key.hasSuffix(";") }
        for (name, value) in parseTable(HTMLEntityData.ftfyUppercase) {
            table[name] = value
        }
        return table
    }()

    private static func parseTable(_ text: String) -> [String: [Unicode.Scalar]] {
        var table: [String: [Unicode.Scalar]] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            precondition(parts.count == 2, "bad generated entity line: \(line)")
            let scalars = parts[1].split(separator: "+").map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
            table[String(parts[0])] = scalars
        }
        return table
    }

    // MARK: Python's html.unescape

    /// Python 3.11's `html.unescape`: `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`,
    /// numeric references through `_invalid_charrefs`/`_invalid_codepoints`, named ones from the
    /// HTML5 table with the longest-prefix rule for the legacy names without `;`.
    static func pythonUnescape(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        let n = text.count
        var i = 0
        while i < n {
            let c = text[i]
            guard c == "&", i + 1 < n else {
                out.append(c)
                i += 1
                continue
            }
            let j = i + 1
            if text[j] == "#" {
                // `#[0-9]+;?`
                var k = j + 1
                while k < n, isASCIIDigit(text[k]) { k += 1 }
                if k > j + 1 {
                    let value = parseNumber(text[(j + 1)..<k], radix: 10)
                    if k < n, text[k] == ";" { k += 1 }
                    appendNumericReference(value, to: &out)
                    i = k
                    continue
                }
                // `#[xX][0-9a-fA-F]+;?`
                if j + 1 < n, text[j + 1] == "x" || text[j + 1] == "X" {
                    k = j + 2
                    while k < n, isASCIIHexDigit(text[k]) { k += 1 }
                    if k > j + 2 {
                        let value = parseNumber(text[(j + 2)..<k], radix: 16)
                        if k < n, text[k] == ";" { k += 1 }
                        appendNumericReference(value, to: &out)
                        i = k
                        continue
                    }
                }
                out.append("&")
                i += 1
                continue
            }
            // `[^\t\n\f <&#;]{1,32};?`
            var k = j
            while k < n, k - j < 32, isNameScalar(text[k]) { k += 1 }
            if k == j {
                out.append("&")
                i += 1
                continue
            }
            if k < n, text[k] == ";" { k += 1 }
            appendNamedReference(text[j..<k], to: &out)
            i = k
        }
        return out
    }

    private static func isNameScalar(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "\t", "\n", "\u{0C}", " ", "<", "&", "#", ";": return false
        default: return true
        }
    }

    /// A named reference `s` (the text after `&`, possibly ending in `;`).
    private static func appendNamedReference(_ s: ArraySlice<Unicode.Scalar>, to out: inout [Unicode.Scalar]) {
        if let value = lookup(html5, s) {
            out += value
            return
        }
        // The longest prefix (of at least two characters) that is a name.
        var x = s.count - 1
        while x > 1 {
            let prefix = s.prefix(x)
            if let value = lookup(html5, prefix) {
                out += value
                out += s.dropFirst(x)
                return
            }
            x -= 1
        }
        out.append("&")
        out += s
    }

    /// A numeric reference; values above U+10FFFF saturate (Python's int is unbounded).
    private static func appendNumericReference(_ num: UInt64, to out: inout [Unicode.Scalar]) {
        if num <= 0xFFFF_FFFF, let replacement = HTMLEntityData.invalidCharrefs[UInt32(num)] {
            out.append(Unicode.Scalar(replacement)!)
            return
        }
        if (0xD800...0xDFFF).contains(num) || num > 0x10FFFF {
            out.append("\u{FFFD}")
            return
        }
        let value = UInt32(num)
        if HTMLEntityData.invalidCodepointRanges.contains(where: { $0.contains(value) }) {
            return
        }
        out.append(Unicode.Scalar(value)!)
    }

    private static func parseNumber(_ digits: ArraySlice<Unicode.Scalar>, radix: UInt64) -> UInt64 {
        let cap: UInt64 = 0x1_0000_0000
        var value: UInt64 = 0
        for d in digits {
            value = min(value * radix + UInt64(hexValue(d)), cap)
        }
        return value
    }

    private static func hexValue(_ c: Unicode.Scalar) -> UInt32 {
        switch c.value {
        case 0x30...0x39: return c.value - 0x30
        case 0x41...0x46: return c.value - 0x41 + 10
        case 0x61...0x66: return c.value - 0x61 + 10
        default: return 0
        }
    }

    // MARK: ftfy's unescape_html

    /// ftfy 6.3.1 `fixes.unescape_html`: `&#?[0-9A-Za-z]{1,24};` replaced when it is an HTML5 name
    /// with `;` (or one of ftfy's all-caps names), or a numeric reference that `html.unescape`
    /// decodes completely; anything else stays.
    static func ftfyUnescape(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        let n = text.count
        var i = 0
        while i < n {
            let c = text[i]
            guard c == "&" else {
                out.append(c)
                i += 1
                continue
            }
            let hash = i + 1 < n && text[i + 1] == "#"
            let start = i + 1 + (hash ? 1 : 0)
            var k = start
            while k < n, isASCIIAlphanumeric(text[k]) { k += 1 }
            let run = k - start
            guard run >= 1, run <= 24, k < n, text[k] == ";" else {
                out.append(c)
                i += 1
                continue
            }
            let end = k + 1
            let entity = text[i..<end]
            if let value = lookup(ftfyEntities, entity.dropFirst()) {
                out += value
            } else if hash {
                let unescaped = pythonUnescape(Array(entity))
                out += unescaped.contains(";") ? Array(entity) : unescaped
            } else {
                out += entity
            }
            i = end
        }
        return out
    }

    // MARK: helpers

    /// Looks a name up by its exact scalars. Every name in the tables is ASCII; a name with any
    /// other scalar is no match (comparing Swift strings would also match canonical equivalents,
    /// such as U+037E GREEK QUESTION MARK for `;`).
    private static func lookup(_ table: [String: [Unicode.Scalar]], _ name: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar]? {
        var key = ""
        key.reserveCapacity(name.count)
        for c in name {
            guard c.isASCII else { return nil }
            key.unicodeScalars.append(c)
        }
        return table[key]
    }

    private static func isASCIIDigit(_ c: Unicode.Scalar) -> Bool {
        c.value >= 0x30 && c.value <= 0x39
    }

    private static func isASCIIHexDigit(_ c: Unicode.Scalar) -> Bool {
        isASCIIDigit(c) || (c.value >= 0x41 && c.value <= 0x46) || (c.value >= 0x61 && c.value <= 0x66)
    }

    private static func isASCIIAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        isASCIIDigit(c) || (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
    }
}
