/// ftfy 6.3.1's mojibake repair, `fix_encoding` (with its sub-steps `restore_byte_a0`,
/// `replace_lossy_sequences`, `decode_inconsistent_utf8` and `fix_c1_controls`), ported from
/// ftfy's `__init__.py`, `fixes.py`, `chardata.py` and `bad_codecs` (Apache License 2.0).
///
/// When `is_bad` fires, the text is encoded in each single-byte codec that can encode it (Latin-1,
/// the sloppy Windows codecs, ISO-8859-2, MacRoman, CP437) and the first whose bytes decode as
/// UTF-8 wins; else embedded UTF-8 mojibake is fixed piece by piece; else C1 controls are read as
/// Windows-1252.
enum FtfyFixEncoding {
    /// `ftfy.fix_encoding(text)`: one step at a time until nothing changes.
    static func fixEncoding(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text = text
        while true {
            let fixed = fixEncodingOneStep(text)
            if fixed == text { return text }
            text = fixed
        }
    }

    /// `_fix_encoding_one_step_and_explain`.
    static func fixEncodingOneStep(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if text.isEmpty || text.allSatisfy({ $0.isASCII }) || !FtfyBadness.isBad(text) {
            return text
        }
        var possibleLatin1 = false
        for codec in SingleByteCodec.charmapEncodings {
            guard var bytes = codec.encode(text) else { continue }
            if codec === SingleByteCodec.latin1 { possibleLatin1 = true }
            if codec !== SingleByteCodec.macRoman, ByteFixes.containsAlteredUTF8(bytes) {
                bytes = ByteFixes.restoreByteA0(bytes)
            }
            if codec.isSloppy {
                bytes = ByteFixes.replaceLossySequences(bytes)
            }
            let decoded = bytes.contains(0xED) || bytes.contains(0xC0)
                ? UTF8Decoding.decodeVariants(bytes) : UTF8Decoding.decodeStrict(bytes)
            if let decoded { return decoded }
        }
        if containsUTF8Mojibake(text) {
            let fixed = decodeInconsistentUTF8(text)
            if fixed != text { return fixed }
        }
        // ftfy checks for "windows-1252" among the possible codecs, which only ever holds the
        // sloppy one, so Latin-1 text is always tried as strict Windows-1252.
        if possibleLatin1, let fixed = decodeStrictWindows1252(text), fixed != text {
            return fixed
        }
        if text.contains(where: { $0.value >= 0x80 && $0.value <= 0x9F }) {
            return Ftfy.fixC1Controls(text)
        }
        return text
    }

    /// `text.encode("latin-1").decode("windows-1252")`; nil where a byte is undefined in
    /// Windows-1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D). `text` is all Latin-1.
    private static func decodeStrictWindows1252(_ text: [Unicode.Scalar]) -> [Unicode.Scalar]? {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for c in text {
            switch c.value {
            case 0x81, 0x8D, 0x8F, 0x90, 0x9D: return nil
            case 0x80...0x9F: out.append(SingleByteCodec.sloppyWindows1252.decode(UInt8(c.value)))
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: decode_inconsistent_utf8

    /// One match of `UTF8_DETECTOR_RE` starting at `start`, or nil: the end of
    /// `(?<![strict])([first_of_2][cont] | [first_of_3][cont]{2} | [first_of_4][cont]{3})+`.
    private static func utf8MojibakeMatch(_ text: [Unicode.Scalar], classes: [FtfyClass], at start: Int) -> Int? {
        if start > 0, classes[start - 1].contains(.utf8ContinuationStrict) { return nil }
        let n = text.count
        func continuations(_ from: Int, _ count: Int) -> Bool {
            guard from + count <= n else { return false }
            for k in from..<(from + count) where !classes[k].contains(.utf8Continuation) { return false }
            return true
        }
        var q = start
        while q < n {
            let c = classes[q]
            if c.contains(.utf8FirstOf2), continuations(q + 1, 1) {
                q += 2
            } else if c.contains(.utf8FirstOf3), continuations(q + 1, 2) {
                q += 3
            } else if c.contains(.utf8FirstOf4), continuations(q + 1, 3) {
                q += 4
            } else {
                break
            }
        }
        return q > start ? q : nil
    }

    private static func classes(_ text: [Unicode.Scalar]) -> [FtfyClass] {
        text.map { FtfyBadness.classes(of: $0) }
    }

    /// `UTF8_DETECTOR_RE.search(text)`.
    static func containsUTF8Mojibake(_ text: [Unicode.Scalar]) -> Bool {
        let cls = classes(text)
        for start in text.indices where utf8MojibakeMatch(text, classes: cls, at: start) != nil {
            return true
        }
        return false
    }

    /// `decode_inconsistent_utf8`: each `UTF8_DETECTOR_RE` match shorter than the text that
    /// `is_bad` is fixed on its own with `fix_encoding`.
    static func decodeInconsistentUTF8(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let cls = classes(text)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if let end = utf8MojibakeMatch(text, classes: cls, at: i) {
                let piece = Array(text[i..<end])
                if piece.count < text.count, FtfyBadness.isBad(piece) {
                    out += fixEncoding(piece)
                } else {
                    out += piece
                }
                i = end
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }
}

/// The byte-level fixers `fix_encoding` applies between encoding and decoding.
enum ByteFixes {
    /// `ALTERED_UTF8_RE`: UTF-8 sequences that would be valid with byte 0xA0 where a space is.
    /// Returns the length of the match at `i`, or 0.
    private static func alteredUTF8Match(_ b: [UInt8], at i: Int) -> Int {
        let n = b.count
        func at(_ k: Int) -> Int { k < n ? Int(b[k]) : -1 }
        func cont(_ x: Int) -> Bool { x >= 0x80 && x <= 0xBF }
        func contNoA0(_ x: Int) -> Bool {  // [\x80-\x84\x86-\x9f\xa1-\xbf]
            (x >= 0x80 && x <= 0x84) || (x >= 0x86 && x <= 0x9F) || (x >= 0xA1 && x <= 0xBF)
        }
        let b0 = at(i), b1 = at(i + 1), b2 = at(i + 2), b3 = at(i + 3)
        // [\xc2\xc3\xc5\xce\xd0\xd9][ ]
        if [0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9].contains(b0), b1 == 0x20 { return 2 }
        // [\xe2\xe3][ ][\x80-\x84\x86-\x9f\xa1-\xbf]
        if b0 == 0xE2 || b0 == 0xE3, b1 == 0x20, contNoA0(b2) { return 3 }
        // [\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf][ ]
        if b0 >= 0xE0 && b0 <= 0xE3, contNoA0(b1), b2 == 0x20 { return 3 }
        if b0 == 0xF0 {
            // [\xf0][ ][\x80-\xbf][\x80-\xbf] | [\xf0][\x80-\xbf][ ][\x80-\xbf] | [\xf0][\x80-\xbf][\x80-\xbf][ ]
            if b1 == 0x20, cont(b2), cont(b3) { return 4 }
            if cont(b1), b2 == 0x20, cont(b3) { return 4 }
            if cont(b1), cont(b2), b3 == 0x20 { return 4 }
        }
        return 0
    }

    /// `ALTERED_UTF8_RE.search(bytes)`.
    static func containsAlteredUTF8(_ bytes: [UInt8]) -> Bool {
        for i in bytes.indices where alteredUTF8Match(bytes, at: i) > 0 { return true }
        return false
    }

    /// `restore_byte_a0`: first `\xc3 ` becomes `\xc3\xa0 ` unless followed by ` `, `quele`,
    /// `quela`, `quilo` or `s ` (Portuguese "à" contractions); then in every `ALTERED_UTF8_RE`
    /// match the spaces become 0xA0.
    static func restoreByteA0(_ input: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(input.count + 4)
        var i = 0
        while i < input.count {
            if input[i] == 0xC3, i + 1 < input.count, input[i + 1] == 0x20, !aGraveExceptionFollows(input, i + 2) {
                bytes += [0xC3, 0xA0, 0x20]
                i += 2
            } else {
                bytes.append(input[i])
                i += 1
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        i = 0
        while i < bytes.count {
            let length = alteredUTF8Match(bytes, at: i)
            if length > 0 {
                out += bytes[i..<(i + length)].map { $0 == 0x20 ? 0xA0 : $0 }
                i += length
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// The lookahead of `A_GRAVE_WORD_RE`: `(?! |quele|quela|quilo|s )` at `k`.
    private static func aGraveExceptionFollows(_ b: [UInt8], _ k: Int) -> Bool {
        func hasPrefix(_ p: String) -> Bool {
            let u = Array(p.utf8)
            return k + u.count <= b.count && Array(b[k..<(k + u.count)]) == u
        }
        return hasPrefix(" ") || hasPrefix("quele") || hasPrefix("quela") || hasPrefix("quilo") || hasPrefix("s ")
    }

    /// `replace_lossy_sequences`: `LOSSY_UTF8_RE` matches (UTF-8 sequences with a byte lost as
    /// 0x1A, the sloppy codecs' byte for U+FFFD, or as `?`) become the UTF-8 of U+FFFD.
    static func replaceLossySequences(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0x1A) || bytes.contains(0x3F) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let length = lossyMatch(bytes, at: i)
            if length > 0 {
                out += [0xEF, 0xBF, 0xBD]
                i += length
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    private static func lossyMatch(_ b: [UInt8], at i: Int) -> Int {
        let n = b.count
        func at(_ k: Int) -> Int { k < n ? Int(b[k]) : -1 }
        func sub(_ x: Int) -> Bool { x == 0x1A }                      // [\x1a]
        func lost(_ x: Int) -> Bool { x == 0x1A || x == 0x3F }        // [\x1a?]
        func cont(_ x: Int) -> Bool { x == 0x1A || (x >= 0x80 && x <= 0xBF) }  // [\x1a\x80-\xbf]
        func any(_ x: Int) -> Bool { lost(x) || (x >= 0x80 && x <= 0xBF) }     // [\x1a?\x80-\xbf]
        let b0 = at(i), b1 = at(i + 1), b2 = at(i + 2), b3 = at(i + 3), b4 = at(i + 4), b5 = at(i + 5)
        if b0 >= 0xC2 && b0 <= 0xDF, sub(b1) { return 2 }
        if b0 == 0xC2 || b0 == 0xC3, b1 == 0x3F { return 2 }
        if b0 == 0xED, b1 >= 0xA0 && b1 <= 0xAF, lost(b2), b3 == 0xED, b4 >= 0xB0 && b4 <= 0xBF, any(b5) { return 6 }
        if b0 == 0xED, b1 >= 0xA0 && b1 <= 0xAF, any(b2), b3 == 0xED, b4 >= 0xB0 && b4 <= 0xBF, lost(b5) { return 6 }
        if b0 >= 0xE0 && b0 <= 0xEF {
            if lost(b1), cont(b2) { return 3 }
            if cont(b1), lost(b2) { return 3 }
        }
        if b0 >= 0xF0 && b0 <= 0xF4 {
            if lost(b1), cont(b2), cont(b3) { return 4 }
            if cont(b1), lost(b2), cont(b3) { return 4 }
            if cont(b1), cont(b2), lost(b3) { return 4 }
        }
        if b0 == 0x1A { return 1 }
        return 0
    }
}

/// UTF-8 decoding as Python does it: strict `utf-8`, and ftfy's `utf-8-variants` (which also
/// reads CESU-8 surrogate pairs and Java's `C0 80` for U+0000).
enum UTF8Decoding {
    /// `bytes.decode("utf-8")`, nil on any error.
    static func decodeStrict(_ bytes: [UInt8]) -> [Unicode.Scalar]? {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            guard let (scalar, length) = decodeOne(bytes, at: i) else { return nil }
            out.append(scalar)
            i += length
        }
        return out
    }

    /// `bytes.decode("utf-8-variants")`, nil on any error.
    static func decodeVariants(_ bytes: [UInt8]) -> [Unicode.Scalar]? {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == 0xC0, i + 1 < n, bytes[i + 1] == 0x80 {
                out.append("\u{0}")
                i += 2
                continue
            }
            if b == 0xED, i + 5 < n,
               (0xA0...0xAF).contains(bytes[i + 1]), (0x80...0xBF).contains(bytes[i + 2]),
               bytes[i + 3] == 0xED, (0xB0...0xBF).contains(bytes[i + 4]), (0x80...0xBF).contains(bytes[i + 5]) {
                let high = (UInt32(bytes[i + 1] & 0x0F) << 16) + (UInt32(bytes[i + 2] & 0x3F) << 10)
                let low = (UInt32(bytes[i + 4] & 0x0F) << 6) + UInt32(bytes[i + 5] & 0x3F)
                out.append(Unicode.Scalar(high + low + 0x10000)!)
                i += 6
                continue
            }
            guard let (scalar, length) = decodeOne(bytes, at: i) else { return nil }
            out.append(scalar)
            i += length
        }
        return out
    }

    /// The offset of the first byte that is not part of well-formed UTF-8, if any.
    static func firstInvalidOffset(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            guard let (_, length) = decodeOne(bytes, at: i) else { return i }
            i += length
        }
        return nil
    }

    /// One well-formed UTF-8 sequence at `i` (shortest form, no surrogates, at most U+10FFFF).
    static func decodeOne(_ b: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
        let n = b.count
        let b0 = b[i]
        if b0 < 0x80 { return (Unicode.Scalar(b0), 1) }
        func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> UInt32? {
            guard k < n, b[k] >= lo, b[k] <= hi else { return nil }
            return UInt32(b[k] & 0x3F)
        }
        switch b0 {
        case 0xC2...0xDF:
            guard let c1 = cont(i + 1) else { return nil }
            return (Unicode.Scalar((UInt32(b0 & 0x1F) << 6) | c1)!, 2)
        case 0xE0...0xEF:
            let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
            let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
            guard let c1 = cont(i + 1, lo, hi), let c2 = cont(i + 2) else { return nil }
            return (Unicode.Scalar((UInt32(b0 & 0x0F) << 12) | (c1 << 6) | c2)!, 3)
        case 0xF0...0xF4:
            let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
            let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
            guard let c1 = cont(i + 1, lo, hi), let c2 = cont(i + 2), let c3 = cont(i + 3) else { return nil }
            return (Unicode.Scalar((UInt32(b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3)!, 4)
        default:
            return nil
        }
    }
}
