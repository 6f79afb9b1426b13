/// Look-ups into the generated UnicodeTables.swift (the reference's Python 3.11 / Unicode 14.0
/// case data and its `regex` module's classes), so results do not depend on the Unicode version
/// of the Swift toolchain.
enum UnicodeLookup {
    /// Python `str.lower()` of the code points it changes.
    static let lowercase: [UInt32: [Unicode.Scalar]] = {
        var table: [UInt32: [Unicode.Scalar]] = [:]
        let flat = UnicodeTables.lowercase
        var k = 0
        while k < flat.count {
            let count = Int(flat[k + 1])
            table[flat[k]] = flat[(k + 2)..<(k + 2 + count)].map { Unicode.Scalar($0)! }
            k += 2 + count
        }
        return table
    }()

    static func isCaseIgnorable(_ c: Unicode.Scalar) -> Bool {
        inRanges(c.value, UnicodeTables.caseIgnorable)
    }

    /// Cased, for a code point that is not case-ignorable.
    static func isCased(_ c: Unicode.Scalar) -> Bool {
        inRanges(c.value, UnicodeTables.casedNotIgnorable)
    }

    /// The CLIP pattern's class of a code point: 0 letter, 1 number, 2 other, 3 none.
    static func pretokenizerClass(_ v: UInt32) -> UInt32 {
        let runs = UnicodeTables.pretokenizerRuns
        // The last run whose start is <= v.
        var lo = 0, hi = runs.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if runs[mid] >> 2 <= v { lo = mid } else { hi = mid - 1 }
        }
        return runs[lo] & 3
    }

    /// Whether `v` is in the sorted closed ranges given as pairs (first, last).
    private static func inRanges(_ v: UInt32, _ pairs: [UInt32]) -> Bool {
        var lo = 0, hi = pairs.count / 2 - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if v < pairs[2 * mid] {
                hi = mid - 1
            } else if v > pairs[2 * mid + 1] {
                lo = mid + 1
            } else {
                return true
            }
        }
        return false
    }
}
