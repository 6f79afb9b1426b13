/// ftfy 6.3.1's mojibake heuristic, `badness.is_bad`: does `BADNESS_RE` match anywhere?
/// The regular expression is ported by hand, one alternative at a time, in its order; its
/// character classes come from FtfyTables.swift.
enum FtfyBadness {
    /// Class bits of every BMP code point (ftfy's classes hold no others).
    static let classTable: [FtfyClass] = {
        var table = [FtfyClass](repeating: [], count: 0x10000)
        let pairs = FtfyTables.classBits
        var k = 0
        while k < pairs.count {
            table[Int(pairs[k])] = FtfyClass(rawValue: pairs[k + 1])
            k += 2
        }
        return table
    }()

    @inline(__always)
    static func classes(of c: Unicode.Scalar) -> FtfyClass {
        c.value < 0x10000 ? classTable[Int(c.value)] : []
    }

    // Unions of classes, as they appear in BADNESS_RE.
    private static let a2First: FtfyClass = [.bad, .lowerAccented, .upperAccented, .box, .startPunctuation,
                                             .endPunctuation, .currency, .numeric, .law]
    private static let a4Second: FtfyClass = [.lowerAccented, .upperAccented, .box, .startPunctuation,
                                              .endPunctuation, .currency, .numeric, .law]
    private static let a5First: FtfyClass = [.lowerAccented, .lowerCommon, .box, .endPunctuation, .currency, .numeric]
    private static let a6First: FtfyClass = [.box, .endPunctuation, .currency, .numeric]
    private static let a7First: FtfyClass = [.lowerAccented, .box, .endPunctuation]
    private static let a9First: FtfyClass = [.upperAccented, .box]
    private static let a10First: FtfyClass = [.lowerAccented, .upperAccented, .box, .currency, .endPunctuation]
    private static let a11First: FtfyClass = [.lowerAccented, .upperAccented, .currency, .numeric, .box, .law]
    private static let a12First: FtfyClass = [.currency, .numeric, .box]
    private static let a15First: FtfyClass = [.lowerAccented, .upperAccented, .currency, .numeric,
                                              .startPunctuation, .endPunctuation, .law]
    private static let accented: FtfyClass = [.lowerAccented, .upperAccented]
    private static let punctuation: FtfyClass = [.startPunctuation, .endPunctuation]
    private static let arabicClasses: FtfyClass = [.common, .currency, .bad, .numeric, .startPunctuation]
    private static let cyrillicGreekMiddle: FtfyClass = [.c1, .bad, .startPunctuation, .endPunctuation, .currency]

    /// `is_bad(text)`.
    static func isBad(_ text: [Unicode.Scalar]) -> Bool {
        let n = text.count
        if n == 0 { return false }
        var cls = [FtfyClass](repeating: [], count: n + 8)
        var v = [UInt32](repeating: 0xFFFF_FFFF, count: n + 8)  // past the end: matches nothing
        for i in 0..<n {
            cls[i] = classes(of: text[i])
            v[i] = text[i].value
        }
        for i in 0..<n where matchesAt(i, n: n, cls: cls, v: v) {
            return true
        }
        return false
    }

    private static func matchesAt(_ i: Int, n: Int, cls: [FtfyClass], v: [UInt32]) -> Bool {
        let c0 = cls[i], c1 = cls[i + 1], c2 = cls[i + 2]
        let v0 = v[i], v1 = v[i + 1], v2 = v[i + 2]
        // [{c1}]
        if c0.contains(.c1) { return true }
        // [{bad}{lower_accented}{upper_accented}{box}{start}{end}{currency}{numeric}{law}] [{bad}]
        if !c0.isDisjoint(with: a2First), c1.contains(.bad) { return true }
        // [a-zA-Z] [{lower_common}{upper_common}] [{bad}]
        if isASCIILetter(v0), !c1.isDisjoint(with: [.lowerCommon, .upperCommon]), c2.contains(.bad) { return true }
        // [{bad}] [{lower_accented}{upper_accented}{box}{start}{end}{currency}{numeric}{law}]
        if c0.contains(.bad), !c1.isDisjoint(with: a4Second) { return true }
        // [{lower_accented}{lower_common}{box}{end}{currency}{numeric}] [{upper_accented}]
        if !c0.isDisjoint(with: a5First), c1.contains(.upperAccented) { return true }
        // [{box}{end}{currency}{numeric}] [{lower_accented}]
        if !c0.isDisjoint(with: a6First), c1.contains(.lowerAccented) { return true }
        // [{lower_accented}{box}{end}] [{currency}]
        if !c0.isDisjoint(with: a7First), c1.contains(.currency) { return true }
        // \s [{upper_accented}] [{currency}]
        if i < n, PythonText.isSpace(v0), c1.contains(.upperAccented), c2.contains(.currency) { return true }
        // [{upper_accented}{box}] [{numeric}{law}]
        if !c0.isDisjoint(with: a9First), !c1.isDisjoint(with: [.numeric, .law]) { return true }
        // [{lower_accented}{upper_accented}{box}{currency}{end}] [{start}] [{numeric}]
        if !c0.isDisjoint(with: a10First), c1.contains(.startPunctuation), c2.contains(.numeric) { return true }
        // [{lower_accented}{upper_accented}{currency}{numeric}{box}{law}] [{end}] [{start}]
        if !c0.isDisjoint(with: a11First), c1.contains(.endPunctuation), c2.contains(.startPunctuation) { return true }
        // [{currency}{numeric}{box}] [{start}]
        if !c0.isDisjoint(with: a12First), c1.contains(.startPunctuation) { return true }
        // [a-z] [{upper_accented}] [{start}{currency}]
        if isASCIILower(v0), c1.contains(.upperAccented), !c2.isDisjoint(with: [.startPunctuation, .currency]) {
            return true
        }
        // [{box}] [{kaomoji}]
        if c0.contains(.box), c1.contains(.kaomoji) { return true }
        // [{lower_accented}{upper_accented}{currency}{numeric}{start}{end}{law}] [{box}]
        if !c0.isDisjoint(with: a15First), c1.contains(.box) { return true }
        // [{box}] [{end}]
        if c0.contains(.box), c1.contains(.endPunctuation) { return true }
        // [{lower_accented}{upper_accented}] [{start}{end}] \w
        if !c0.isDisjoint(with: accented), !c1.isDisjoint(with: punctuation), i + 2 < n, PythonText.isWordChar(v2) {
            return true
        }
        // [Œœ][^A-Za-z]
        if v0 == 0x152 || v0 == 0x153, i + 1 < n, !isASCIILetter(v1) { return true }
        // [{upper_accented}]°
        if c0.contains(.upperAccented), v1 == 0xB0 { return true }
        // [ÂÃÎÐ][€œŠš¢£Ÿž\xa0\xad®©°·»{start}{end}–—´]
        if v0 == 0xC2 || v0 == 0xC3 || v0 == 0xCE || v0 == 0xD0 {
            switch v1 {
            case 0x20AC, 0x153, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0, 0xAD, 0xAE, 0xA9, 0xB0, 0xB7, 0xBB,
                 0x2013, 0x2014, 0xB4:
                return true
            default:
                if !c1.isDisjoint(with: punctuation) { return true }
            }
        }
        // × [²³]
        if v0 == 0xD7, v1 == 0xB2 || v1 == 0xB3 { return true }
        // [ØÙ] [{common}{currency}{bad}{numeric}{start}ŸŠ®°µ»] [ØÙ] [same]
        if v0 == 0xD8 || v0 == 0xD9, isArabicMojibakeSecond(v1, c1), v2 == 0xD8 || v2 == 0xD9,
           isArabicMojibakeSecond(v[i + 3], cls[i + 3]) {
            return true
        }
        // à[²µ¹¼½¾]
        if v0 == 0xE0 {
            switch v1 {
            case 0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE: return true
            default: break
            }
        }
        // √[±∂†≠®™´≤≥¥µø]
        if v0 == 0x221A {
            switch v1 {
            case 0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4, 0x2264, 0x2265, 0xA5, 0xB5, 0xF8: return true
            default: break
            }
        }
        // ≈[°¢]
        if v0 == 0x2248, v1 == 0xB0 || v1 == 0xA2 { return true }
        // ‚Ä[ìîïòôúùû†°¢π]
        if v0 == 0x201A, v1 == 0xC4 {
            switch v2 {
            case 0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9, 0xFB, 0x2020, 0xB0, 0xA2, 0x3C0: return true
            default: break
            }
        }
        // ‚[âó][àä°ê]
        if v0 == 0x201A, v1 == 0xE2 || v1 == 0xF3, v2 == 0xE0 || v2 == 0xE4 || v2 == 0xB0 || v2 == 0xEA {
            return true
        }
        // вЂ
        if v0 == 0x432, v1 == 0x402 { return true }
        // [ВГРС][{c1}{bad}{start}{end}{currency}°µ][ВГРС]
        if isCyrillicVGRS(v0), !c1.isDisjoint(with: cyrillicGreekMiddle) || v1 == 0xB0 || v1 == 0xB5,
           isCyrillicVGRS(v2) {
            return true
        }
        // ГўВЂВ.[A-Za-z ]
        if v0 == 0x413, v1 == 0x45E, v2 == 0x412, v[i + 3] == 0x402, v[i + 4] == 0x412,
           i + 5 < n, v[i + 5] != 0x0A, isASCIILetter(v[i + 6]) || v[i + 6] == 0x20 {
            return true
        }
        // Ã[\xa0¡]
        if v0 == 0xC3, v1 == 0xA0 || v1 == 0xA1 { return true }
        // [a-z]\s?[ÃÂ][ ]
        if isASCIILower(v0) {
            if i + 1 < n, PythonText.isSpace(v1), v2 == 0xC3 || v2 == 0xC2, v[i + 3] == 0x20 { return true }
            if v1 == 0xC3 || v1 == 0xC2, v2 == 0x20 { return true }
        }
        // ^[ÃÂ][ ]
        if i == 0, v0 == 0xC3 || v0 == 0xC2, v1 == 0x20 { return true }
        // [a-z.,?!{end}] Â [ {start}{end}]
        if isASCIILower(v0) || v0 == 0x2E || v0 == 0x2C || v0 == 0x3F || v0 == 0x21 || c0.contains(.endPunctuation),
           v1 == 0xC2, v2 == 0x20 || !c2.isDisjoint(with: punctuation) {
            return true
        }
        // β€[™\xa0Ά\xad®°]
        if v0 == 0x3B2, v1 == 0x20AC {
            switch v2 {
            case 0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0: return true
            default: break
            }
        }
        // [ΒΓΞΟ][{c1}{bad}{start}{end}{currency}°][ΒΓΞΟ]
        if isGreekBGXO(v0), !c1.isDisjoint(with: cyrillicGreekMiddle) || v1 == 0xB0, isGreekBGXO(v2) { return true }
        // ā€
        if v0 == 0x101, v1 == 0x20AC { return true }
        return false
    }

    private static func isArabicMojibakeSecond(_ v: UInt32, _ c: FtfyClass) -> Bool {
        if !c.isDisjoint(with: arabicClasses) { return true }
        switch v {
        case 0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB: return true
        default: return false
        }
    }

    @inline(__always) private static func isCyrillicVGRS(_ v: UInt32) -> Bool {
        v == 0x412 || v == 0x413 || v == 0x420 || v == 0x421
    }

    @inline(__always) private static func isGreekBGXO(_ v: UInt32) -> Bool {
        v == 0x392 || v == 0x393 || v == 0x39E || v == 0x39F
    }

    @inline(__always) private static func isASCIILetter(_ v: UInt32) -> Bool {
        (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A)
    }

    @inline(__always) private static func isASCIILower(_ v: UInt32) -> Bool {
        v >= 0x61 && v <= 0x7A
    }
}
