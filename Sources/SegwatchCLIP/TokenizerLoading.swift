import CBPEVocabulary
import Foundation

extension CLIPTokenizer {
    /// The tokenizer of a model: transformers' `vocab.json` and `merges.txt` when its folder
    /// has them, else OpenAI's BPE vocabulary that ships with segwatch (open_clip folders and
    /// OpenAI's files carry none; both use this file).
    public static func forModel(_ model: String) throws(CLIPTokenizerError) -> CLIPTokenizer {
        let folder = URL(fileURLWithPath: model)
        let vocab = folder.appendingPathComponent("vocab.json").path, merges = folder.appendingPathComponent("merges.txt").path
        if FileManager.default.fileExists(atPath: vocab) && FileManager.default.fileExists(atPath: merges) {
            return try CLIPTokenizer(vocabJSON: vocab, merges: merges)
        }
        return try openAI()
    }

    /// OpenAI's `bpe_simple_vocab_16e6.txt.gz`, built into segwatch (`CBPEVocabulary`).
    public static func openAI() throws(CLIPTokenizerError) -> CLIPTokenizer {
        let bytes = Array(UnsafeBufferPointer(start: cbpe_vocabulary_bytes(), count: Int(cbpe_vocabulary_count())))
        return CLIPTokenizer(bpe: try VocabularyFiles.loadBPE(bytes, path: "bpe_simple_vocab_16e6.txt.gz (built in)"))
    }
}
