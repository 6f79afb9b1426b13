import Foundation
import Testing
@testable import SegwatchCLIP
import SegwatchTestSupport

private let fixturesDirectory = Fixtures.root

private let bpePath = fixturesDirectory.appendingPathComponent("clip_vocab/bpe_simple_vocab_16e6.txt.gz").path
private let vocabJSONPath = fixturesDirectory.appendingPathComponent("clip_hf/vocab.json").path
private let mergesPath = fixturesDirectory.appendingPathComponent("clip_hf/merges.txt").path

private struct TokenizerCase: Decodable {
    let id: String
    let text: String
    let cleaned: String
    let bpe: [Int32]
    let inputIDs: [Int32]
    let ftfySteps: [[String]]

    enum CodingKeys: String, CodingKey {
        case id, text, cleaned, bpe
        case inputIDs = "input_ids"
        case ftfySteps = "ftfy_steps"
    }
}

private struct CaseFile: Decodable {
    let contextLength: Int
    let sot: Int32
    let eot: Int32
    let cases: [TokenizerCase]

    enum CodingKeys: String, CodingKey {
        case contextLength = "context_length"
        case sot, eot, cases
    }
}

private enum Shared {
    static let bpeTokenizer = Result { () throws(CLIPTokenizerError) in try CLIPTokenizer(bpeFile: bpePath) }
    static let hubTokenizer = Result { () throws(CLIPTokenizerError) in
        try CLIPTokenizer(vocabJSON: vocabJSONPath, merges: mergesPath)
    }
    static let caseFile = Result { () throws -> CaseFile in
        let url = fixturesDirectory.appendingPathComponent("clip_vocab/tokenizer_cases.json")
        return try JSONDecoder().decode(CaseFile.self, from: Data(contentsOf: url))
    }
}

/// Escapes every non-ASCII or control scalar, so that failures show exactly what differs.
private func escaped(_ s: String) -> String {
    s.unicodeScalars.map { c in
        c.value >= 0x20 && c.value < 0x7F ? String(c) : "\\u{\(String(c.value, radix: 16))}"
    }.joined()
}

private func firstDifference(_ a: [Int32], _ b: [Int32]) -> String {
    let k = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
    let got = k < a.count ? String(a[k]) : "end"
    let want = k < b.count ? String(b[k]) : "end"
    return "first difference at index \(k): got \(got), expected \(want)"
}

// MARK: - the fixture cases

@Test func everyFixtureCaseMatchesTheReference() throws {
    let tokenizer = try Shared.bpeTokenizer.get()
    let file = try Shared.caseFile.get()
    #expect(file.contextLength == CLIPTokenizer.contextLength)
    #expect(tokenizer.startOfText == file.sot && file.sot == 49406)
    #expect(tokenizer.endOfText == file.eot && file.eot == 49407)
    var passed = 0
    for c in file.cases {
        let ids = tokenizer.tokenize(c.text)
        let bpe = tokenizer.encode(c.text)
        if ids == c.inputIDs && bpe == c.bpe {
            passed += 1
            continue
        }
        let cleaned = cleanText(c.text)
        let cleanedMatches = Array(cleaned.unicodeScalars) == Array(c.cleaned.unicodeScalars)
        Issue.record("""
            \(c.id): text "\(escaped(c.text))"
              cleaned  "\(escaped(cleaned))"\(cleanedMatches ? " (as expected)" : "")
              expected "\(escaped(c.cleaned))" (ftfy steps \(c.ftfySteps))
              input_ids: \(ids == c.inputIDs ? "equal" : firstDifference(ids, c.inputIDs))
              bpe: \(bpe == c.bpe ? "equal" : firstDifference(bpe, c.bpe))
            """)
    }
    print("clip tokenizer parity: \(passed)/\(file.cases.count) cases pass")
    #expect(passed == file.cases.count)
}

@Test func cleaningMatchesTheReferenceCleanedText() throws {
    let file = try Shared.caseFile.get()
    for c in file.cases {
        let cleaned = cleanText(c.text)
        #expect(Array(cleaned.unicodeScalars) == Array(c.cleaned.unicodeScalars),
                "\(c.id): \"\(escaped(cleaned))\" != \"\(escaped(c.cleaned))\"")
    }
}

@Test func bothConstructorsAgree() throws {
    let openAI = try Shared.bpeTokenizer.get()
    let hub = try Shared.hubTokenizer.get()
    #expect(openAI.startOfText == hub.startOfText)
    #expect(openAI.endOfText == hub.endOfText)
    #expect(openAI.bpe.merges == hub.bpe.merges)
    #expect(openAI.bpe.byteIDs == hub.bpe.byteIDs)
    #expect(openAI.bpe.finalByteIDs == hub.bpe.finalByteIDs)
    for c in try Shared.caseFile.get().cases {
        #expect(openAI.tokenize(c.text) == hub.tokenize(c.text), "\(c.id)")
    }
}

@Test func plainTextBPEFileLoadsToo() throws {
    let gz = try Data(contentsOf: URL(fileURLWithPath: bpePath))
    let plain = try VocabularyFiles.gunzip([UInt8](gz), path: bpePath)
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("clip-bpe-\(UUID().uuidString).txt")
    try Data(plain).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let tokenizer = try CLIPTokenizer(bpeFile: url.path)
    let reference = try Shared.bpeTokenizer.get()
    #expect(tokenizer.tokenize("a photo of a cat") == reference.tokenize("a photo of a cat"))
    #expect(tokenizer.bpe.merges == reference.bpe.merges)
}

// MARK: - targeted behaviour

@Test func truncationKeepsEndOfTextLast() throws {
    let tokenizer = try Shared.bpeTokenizer.get()
    let text = Array(repeating: "cat", count: 200).joined(separator: " ")
    let content = tokenizer.encode(text)
    #expect(content.count == 200)
    let ids = tokenizer.tokenize(text)
    #expect(ids.count == CLIPTokenizer.contextLength)
    #expect(ids.first == 49406)
    #expect(ids.last == 49407)
    #expect(Array(ids[1..<76]) == Array(content.prefix(75)))
    #expect(!ids.contains(0))
}

@Test func emptyTextIsStartEndAndPadding() throws {
    let tokenizer = try Shared.bpeTokenizer.get()
    for text in ["", "   ", "\t\n\r", "\u{FEFF}", "\u{1B}[0m"] {
        #expect(tokenizer.encode(text).isEmpty)
        #expect(tokenizer.tokenize(text) == [49406, 49407] + Array(repeating: 0, count: 75))
    }
}

@Test func htmlIsUnescapedTwice() throws {
    #expect(cleanText("&amp;amp;") == "&")
    #expect(cleanText("fish &amp;amp; chips") == "fish & chips")
    // ftfy repeats its fixes until the text stops changing, so it unescapes every level.
    #expect(cleanText("&amp;amp;amp;amp;") == "&")
    // After a `<`, ftfy leaves entities alone; html.unescape still runs twice.
    #expect(cleanText("<b>&amp;amp;amp;</b>") == "<b>&amp;</b>")
    // Legacy names without `;`, longest prefix.
    #expect(cleanText("&notit; &copy 2024") == "¬it; © 2024")
    let tokenizer = try Shared.bpeTokenizer.get()
    #expect(tokenizer.encode("&amp;amp;") == tokenizer.encode("&"))
}

@Test func pythonLowercasing() {
    #expect(Array(cleanText("İSTANBUL").unicodeScalars) == Array("i\u{307}stanbul".unicodeScalars))
    #expect(cleanText("ΟΔΟΣ ΣΑΣ") == "οδος σας")
    #expect(cleanText("ΣΊΣΥΦΟΣ") == "σίσυφος")
    #expect(cleanText("Σ") == "σ")
}

@Test func mojibakeIsRepaired() {
    #expect(cleanText("cafÃ©") == "café")
    #expect(cleanText("donâ€™t") == "don't")
    #expect(cleanText("The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.") == "the mona lisa doesn't have eyebrows.")
    #expect(cleanText("voilÃ  le travail") == "voilà le travail")
    #expect(cleanText("smart \u{93}quotes\u{94} via c1") == "smart \"quotes\" via c1")
}

@Test func specialTokenTextIsTheSpecialToken() throws {
    let tokenizer = try Shared.bpeTokenizer.get()
    #expect(tokenizer.encode("<start_of_text>") == [49406])
    #expect(tokenizer.encode("a <END_OF_TEXT> b") == tokenizer.encode("a") + [49407] + tokenizer.encode("b"))
    // transformers' spelling is ordinary text for open_clip.
    #expect(!tokenizer.encode("<|endoftext|>").contains(49407))
    // The pattern matches `s` as U+017F too (IGNORECASE), but only the exact spelling is special:
    // the match is one ordinary piece (ids from the reference).
    #expect(tokenizer.encode("<\u{17F}tart_of_text>") == [27, 129, 123, 16707, 62, 684, 62, 18169, 285])
    #expect(tokenizer.encode("it'\u{17F}") == [585, 6, 129, 379])
}

@Test func concurrentUseGivesTheSameIDs() async throws {
    let tokenizer = try Shared.bpeTokenizer.get()
    let texts = (0..<200).map { "a photo of thing number \($0) in the street" }
    let expected = texts.map { tokenizer.tokenize($0) }
    let results = await withTaskGroup(of: [[Int32]].self) { group in
        for _ in 0..<8 {
            group.addTask { texts.map { tokenizer.tokenize($0) } }
        }
        var all: [[[Int32]]] = []
        for await r in group { all.append(r) }
        return all
    }
    for r in results { #expect(r == expected) }
}

// MARK: - errors

@Test func missingFileIsUnreadable() {
    let path = "/nonexistent/dir/bpe_simple_vocab_16e6.txt.gz"
    do {
        _ = try CLIPTokenizer(bpeFile: path)
        Issue.record("expected an error")
    } catch {
        guard case .unreadable(let p, _) = error else {
            Issue.record("expected unreadable, got \(error)")
            return
        }
        #expect(p == path)
        #expect(error.description.contains(path))
    }
}

@Test func corruptFilesAreUnreadableOrMalformed() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-tok-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }

    // gzip magic, then garbage
    let corrupt = dir.appendingPathComponent("corrupt.txt.gz")
    try Data([0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]).write(to: corrupt)
    // a truncated gzip of the real file
    let real = try Data(contentsOf: URL(fileURLWithPath: bpePath))
    let truncated = dir.appendingPathComponent("truncated.txt.gz")
    try real.prefix(real.count / 2).write(to: truncated)
    // plain text, too few merges
    let short = dir.appendingPathComponent("short.txt")
    try Data("#version: 0.2\ni n\nt h\n".utf8).write(to: short)
    // plain text, a bad merge line
    var lines = ["#version: 0.2"] + Array(repeating: "i n", count: VocabularyFiles.mergeCount)
    lines[7] = "three symbols here"
    let badLine = dir.appendingPathComponent("badline.txt")
    try Data(lines.joined(separator: "\n").utf8).write(to: badLine)

    for url in [corrupt, truncated, short, badLine] {
        do {
            _ = try CLIPTokenizer(bpeFile: url.path)
            Issue.record("\(url.lastPathComponent): expected an error")
        } catch {
            switch error {
            case .unreadable(let p, _), .malformed(let p, _, _):
                #expect(p == url.path)
            }
            #expect(error.description.contains(url.path))
            if url == badLine {
                guard case .malformed(_, let line, _) = error else {
                    Issue.record("expected malformed, got \(error)")
                    continue
                }
                #expect(line == 8)
            }
        }
    }

    // hub files: not JSON; no #version header
    let notJSON = dir.appendingPathComponent("vocab.json")
    try Data("not json".utf8).write(to: notJSON)
    #expect(throws: CLIPTokenizerError.self) { try CLIPTokenizer(vocabJSON: notJSON.path, merges: mergesPath) }
    let noHeader = dir.appendingPathComponent("merges.txt")
    try Data("i n\nt h\n".utf8).write(to: noHeader)
    do {
        _ = try CLIPTokenizer(vocabJSON: vocabJSONPath, merges: noHeader.path)
        Issue.record("expected an error")
    } catch {
        guard case .malformed(let p, let line, _) = error else {
            Issue.record("expected malformed, got \(error)")
            return
        }
        #expect(p == noHeader.path && line == 1)
    }
}

// MARK: - speed

@Test func tenThousandLabels() throws {
    let clock = ContinuousClock()
    var loaded: CLIPTokenizer?
    let loading = try clock.measure { loaded = try CLIPTokenizer(bpeFile: bpePath) }
    let tokenizer = try #require(loaded)
    let words = ["photo", "cat", "dog", "street", "red", "car", "person", "bicycle", "traffic", "light",
                 "tree", "building", "sky", "road", "bus", "truck", "sign", "window", "door", "lamp"]
    let labels = (0..<10_000).map { i in
        "a photo of a \(words[i % words.count]) \(words[(i / 20) % words.count]) \(i % 97)"
    }
    // The first pass fills the BPE cache; the second finds every piece there.
    let cold = clock.measure { for label in labels { _ = tokenizer.tokenize(label) } }
    let warm = clock.measure { for label in labels { _ = tokenizer.tokenize(label) } }
    print("load \(loading); tokenize 10,000 labels: \(cold) (cold cache), \(warm) (warm cache)")
}
