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

    /// OpenAI's `bpe_simple_vocab_16e6.txt.gz`, a resource of this module.
    public static func openAI() throws(CLIPTokenizerError) -> CLIPTokenizer {
        guard let path = Bundle.module.path(forResource: "bpe_simple_vocab_16e6.txt", ofType: "gz") else {
            throw .unreadable(path: "bpe_simple_vocab_16e6.txt.gz",
                              reason: "the BPE vocabulary segwatch ships is missing from its resources (segwatch_SegwatchCLIP.resources beside the executable)")
        }
        return try CLIPTokenizer(bpeFile: path)
    }
}
