import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchTensor
import SegwatchTestSupport
import Testing

private func scratchFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-vocab-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

struct VocabularyParsingTests {
    @Test func fileWithSynonymsCommentsAndBlankLines() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("vocab.txt")
        try Data("# street scene\r\ncar | automobile\r\n\r\n  traffic light  # signals\r\nsky\n".utf8).write(to: file)
        let vocabulary = try Vocabulary(file: file.path)
        #expect(vocabulary.labels.map(\.spellings) == [["car", "automobile"], ["traffic light"], ["sky"]])
        #expect(vocabulary.labels.map(\.name) == ["car", "traffic light", "sky"])
        #expect(vocabulary.labels.map(\.origin) == ["\(file.path):2", "\(file.path):4", "\(file.path):5"])
        #expect(vocabulary.labels[0].key == "car|automobile")
    }

    @Test func badInputNamesTheLine() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func parse(_ text: String) throws -> Vocabulary {
            let file = folder.appendingPathComponent("v\(UUID().uuidString).txt")
            try Data(text.utf8).write(to: file)
            return try Vocabulary(file: file.path)
        }
        #expect { try parse("car\n\ndog||hound\n") } throws: { error in
            guard case let .emptyLabel(origin, text) = error as? VocabularyError else { return false }
            return origin.hasSuffix(":3") && text == "dog||hound"
        }
        #expect { try parse("car\ndog\ncar|auto\n") } throws: { error in
            guard case let .duplicate(name, first, again) = error as? VocabularyError else { return false }
            return name == "car" && first.hasSuffix(":1") && again.hasSuffix(":3")
        }
        #expect { try parse("# nothing but comments\n\n") } throws: { error in
            if case .emptyFile = error as? VocabularyError { return true } else { return false }
        }
        let latin1 = folder.appendingPathComponent("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: latin1)
        #expect { try Vocabulary(file: latin1.path) } throws: { "\($0)".contains("UTF-8") && "\($0)".contains(latin1.path) }
        #expect(throws: VocabularyError.self) { try Vocabulary(file: folder.appendingPathComponent("missing.txt").path) }
        #expect(throws: VocabularyError.empty) { try Vocabulary(arguments: []) }
        #expect(throws: VocabularyError.emptyLabel(origin: "--label 2", text: " ")) { try Vocabulary(arguments: ["car", " "]) }
    }

    @Test func templatesNeedASlot() throws {
        #expect(PromptTemplates.standard.templates.count == 10)
        #expect(PromptTemplates.single.prompts("dog") == ["a photo of a dog."])
        #expect(throws: VocabularyError.templateWithoutSlot(origin: "--template 2", template: "a photo")) {
            try PromptTemplates(["a {}.", "a photo"])
        }
        #expect(throws: VocabularyError.noTemplates) { try PromptTemplates([]) }
        #expect(PromptTemplates.standard.digest != PromptTemplates.single.digest)
        // The digest sees where one template ends: ["ab{}", "c"] is not ["a", "b{}c"].
        #expect(try PromptTemplates(["ab{}", "c{}"]).digest != PromptTemplates(["a{}", "bc{}"]).digest)
    }
}

/// The vocabulary against the text tower run one prompt at a time, and the cache's behaviour.
/// The fixture model has random weights: the words mean nothing, the arithmetic is what is tested.
struct VocabularyEncodingTests {
    static let folder = Fixtures.root.appendingPathComponent("clip_hf").path
    let backend = testBackend
    let model: CLIP<CPUBackend>
    let tokenizer: CLIPTokenizer
    let templates = try! PromptTemplates(["a photo of a {}.", "there is a {} in the scene.", "{}"])

    init() throws {
        model = try CLIP.load(Self.folder, backend: backend)
        tokenizer = try CLIPTokenizer.forModel(Self.folder)
    }

    private func encoder(batch: Int = 64) -> VocabularyEncoder<CPUBackend> {
        var encoder = VocabularyEncoder(text: model.text, tokenizer: tokenizer, templates: templates)
        encoder.batchSize = batch
        return encoder
    }

    private func normalized(_ values: [Float]) -> [Float] {
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    /// The definition, spelled out: each prompt alone through the tower, normalized, averaged
    /// over every spelling and template, normalized.
    private func reference(_ label: VocabularyLabel) throws -> [Float] {
        var sum = [Float](repeating: 0, count: model.text.embedDim)
        for spelling in label.spellings {
            for prompt in templates.prompts(spelling) {
                let embedding = normalized(backend.download(try model.text([tokenizer.tokenize(prompt)])).toArray())
                for d in sum.indices { sum[d] += embedding[d] }
            }
        }
        return normalized(sum)
    }

    @Test(arguments: [1, 4, 64])
    func labelEmbeddingIsTheNormalizedMeanOfItsPrompts(batch: Int) throws {
        let labels = try Vocabulary(arguments: ["car|automobile|motor vehicle", "dog", "a very long name for a traffic light", "sky"]).labels
        let embeddings = try encoder(batch: batch).encode(labels)
        for (label, embedding) in zip(labels, embeddings) {
            let expected = try reference(label)
            let worst = zip(embedding, expected).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-5, "\(label.key), batch \(batch): max difference \(worst)")
        }
    }

    // 77 tokens is the whole context; a label needing more is refused before any work, naming it.
    @Test func aLabelLongerThanTheContextIsRefused() throws {
        let long = Array(repeating: "word", count: 80).joined(separator: " ")
        let labels = try Vocabulary(arguments: ["dog", long]).labels
        #expect { try encoder().encode(labels) } throws: { error in
            guard case let .tooLong(origin, label, _, tokens, context) = error as? VocabularyError else { return false }
            return origin == "--label 2" && label == long && tokens > 77 && context == 77
        }
        // A 100 KB label is quoted by a short prefix, not repeated whole (twice) in the message.
        let huge = String(repeating: "a", count: 100_000)
        #expect { try encoder().encode(try Vocabulary(arguments: [huge]).labels) } throws: { error in
            let message = "\(error)"
            return message.count < 1000 && message.contains("(100000 characters)") && message.contains("--label 1")
        }
        // Exactly full is allowed: 75 one-token words with the bare template, plus start and end.
        let fits = Array(repeating: "word", count: 75).joined(separator: " ")
        let onlyBare = try PromptTemplates(["{}"])
        #expect(try VocabularyEncoder(text: model.text, tokenizer: tokenizer, templates: onlyBare)
            .encode(Vocabulary(arguments: [fits]).labels).count == 1)
    }

    private struct EncoderCalled: Error {}

    private func embed(_ arguments: [String], cache: VocabularyCache?, digest: UInt64 = 7,
                       allowEncoding: Bool = true) throws -> (LabelEmbeddings, VocabularyReport) {
        try embedVocabulary(Vocabulary(arguments: arguments), templates: templates, modelDigest: digest, cache: cache, encoder: {
            guard allowEncoding else { throw EncoderCalled() }
            return encoder()
        })
    }

    @Test func theCacheEncodesOnlyWhatItLacks() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = VocabularyCache(directory: folder)
        let (first, report) = try embed(["car|automobile", "dog", "sky"], cache: cache)
        #expect(report.encoded == 3 && report.cached == 0 && report.cacheWriteError == nil)
        // Warm: the text tower is never asked for, and the values come back bit for bit.
        let (again, warm) = try embed(["car|automobile", "dog", "sky"], cache: cache, allowEncoding: false)
        #expect(warm.encoded == 0 && warm.cached == 3 && warm.cacheDamage == nil)
        #expect(again.values == first.values && again.dimension == model.text.embedDim)
        // A changed vocabulary: one new label, a reordering; only the new one is encoded.
        let (grown, growth) = try embed(["sky", "tree", "dog", "car|automobile"], cache: cache)
        #expect(growth.encoded == 1 && growth.cached == 3)
        #expect(Array(grown.row(0)) == Array(first.row(2)) && Array(grown.row(3)) == Array(first.row(0)))
        let tree = try reference(VocabularyLabel(parsing: "tree", origin: "test"))
        #expect(zip(grown.row(1), tree).allSatisfy { abs($0 - $1) < 1e-5 })
        // Synonyms are part of the key: "car" alone is a different label from "car|automobile".
        #expect(try embed(["car"], cache: cache).1.encoded == 1)
        // Another model or template set has its own pack.
        #expect(try embed(["dog"], cache: cache, digest: 8).1.encoded == 1)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("vocabulary").path)).count == 2)
    }

    // The size the issue asks for: 10,000 labels in one pack, all read back.
    @Test func tenThousandLabelsRoundTripThroughTheCache() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = VocabularyCache(directory: folder)
        let labels = (0..<10_000).map { "object number \($0)" }
        let vocabulary = try Vocabulary(arguments: labels)
        let single = PromptTemplates.single
        var calls = 0
        let (cold, report) = try embedVocabulary(vocabulary, templates: single, modelDigest: 9, cache: cache, encoder: {
            VocabularyEncoder(text: model.text, tokenizer: tokenizer, templates: single)
        }, progress: { done, total in
            calls += 1
            #expect(done <= total && total == 10_000)
        })
        #expect(report.encoded == 10_000 && calls == 10_000 / 64 + 1)
        let (warm, again) = try embedVocabulary(vocabulary, templates: single, modelDigest: 9, cache: cache,
                                                encoder: { () throws -> VocabularyEncoder<CPUBackend> in throw EncoderCalled() })
        #expect(again.cached == 10_000 && warm.values == cold.values)
    }

    @Test func damagedPacksAreDetectedAndRepaired() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = VocabularyCache(directory: folder)
        let labels = ["car", "dog", "sky", "tree"]
        let (clean, _) = try embed(labels, cache: cache)
        let pack = cache.packFile(model: 7, templates: templates.digest)
        let original = try Data(contentsOf: pack)
        let entryBytes = (original.count - 40) / 4

        // A flipped bit in the third entry's values, a file cut short mid-entry (a partial
        // write), and a garbage header: each is reported, the lost labels encoded again, the
        // result equal to the clean one, and the pack whole again afterwards.
        var flipped = original
        flipped[40 + 2 * entryBytes + 20] ^= 0x10
        let damages: [(Data, Int)] = [(flipped, 2), (original.prefix(40 + entryBytes + 9), 3), (Data(repeating: 0x41, count: 64), 4)]
        for (damaged, lost) in damages {
            try damaged.write(to: pack)
            let (repaired, report) = try embed(labels, cache: cache)
            #expect(report.cacheDamage != nil && report.encoded == lost, "\(report)")
            #expect(zip(repaired.values, clean.values).allSatisfy { abs($0 - $1) < 1e-6 })
            #expect(try embed(labels, cache: cache, allowEncoding: false).1.cacheDamage == nil)
        }
    }

    // A cache that cannot be written costs the next run time, not this run's result.
    @Test func anUnwritableCacheStillGivesEmbeddings() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("a file where the folder should be".utf8).write(to: folder.appendingPathComponent("vocabulary"))
        let (embeddings, report) = try embed(["car", "dog"], cache: VocabularyCache(directory: folder))
        #expect(embeddings.labels.count == 2 && report.encoded == 2 && report.cacheWriteError != nil)
    }

    @Test func theModelDigestFollowsTheFolderContent() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = URL(fileURLWithPath: Self.folder)
        for name in ["config.json", "model.safetensors", "vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let memo = folder.appendingPathComponent("memo")
        let digest = try CLIPFiles.digest(folder.path, memo: memo)
        #expect(try CLIPFiles.digest(folder.path, memo: memo) == digest)
        #expect(try CLIPFiles.digest(folder.path) == digest)
        // One changed byte of the vocabulary file changes the digest.
        var merges = try Data(contentsOf: folder.appendingPathComponent("merges.txt"))
        merges[merges.count - 2] ^= 1
        try merges.write(to: folder.appendingPathComponent("merges.txt"))
        #expect(try CLIPFiles.digest(folder.path, memo: memo) != digest)
    }
}
