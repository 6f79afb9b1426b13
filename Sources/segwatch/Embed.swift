import SegwatchBackends
import ArgumentParser
import Foundation
import SegwatchService
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchMedia
import SegwatchNN
import SegwatchTensor

/// `segwatch embed`: CLIP embeddings of texts and of one picture, and DINOv2's tokens of it.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed texts and a picture with CLIP or DINOv2; print their cosine similarities, or write the tensors.",
        discussion: """
            The model folder is loaded unchanged: the transformers layout (config.json, \
            model.safetensors or pytorch_model.bin, vocab.json, merges.txt) or the open_clip \
            layout (open_clip_config.json, open_clip_model.safetensors or \
            open_clip_pytorch_model.bin; the OpenAI BPE vocabulary comes with segwatch).

            --out FILE.safetensors writes text.input_ids (Nx77 int32), text.embeds (NxD, \
            projected, not normalized), image.embeds (1xD) and, with --dense, image.dense \
            (1 x H/p x W/p x D: ClearCLIP patch features in the joint space). Without --out, \
            prints the picture's cosine similarity with each text and their softmax \
            probabilities at the model's logit scale: a zero-shot classifier.

            With --label or --vocab, the picture is compared with a vocabulary instead: each \
            label embedded through the prompt-template ensemble and cached (see 'segwatch vocab'), \
            and the table lists the best labels.

            --dino DIR (a transformers Dinov2Model or Dinov2WithRegistersModel folder) runs \
            DINOv2 on the picture; --out then also gets dino.last (1 x T x D: the final \
            LayerNorm's tokens, the class token, the registers, then the patches row by row), \
            dino.pooled (1 x D: its class token) and dino.hidden.K for each of --levels K,K \
            (the tokens after layer K, before the final LayerNorm; 0 is the embeddings).

            --size HxW resizes the whole picture to exactly that size (bicubic, no crop); its \
            sides must be multiples of the patch size of each model given. The default is each \
            model's native size.
            """)

    @Option(help: "CLIP model: a transformers or open_clip folder, OpenAI's .pt file, or a model name (segwatch models list).", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: "DINOv2 model: a transformers folder (config.json, model.safetensors or pytorch_model.bin), or a model name (segwatch models list).", transform: ModelArgument.dino)
    var dino: String?

    @Option(help: ArgumentHelp("DINOv2's hidden states to write with --out: layer numbers, comma-separated (1 is after the first layer).", valueName: "K,K"))
    var levels: String?

    @Option(name: .customLong("text"), help: "A text to embed. Repeatable.")
    var texts: [String] = []

    @OptionGroup(title: "Vocabulary (classify the picture against labels)") var vocabulary: VocabularyOptions

    @Option(help: "Rows of the table with a vocabulary.")
    var topK = 10

    @Option(help: "A picture to embed (anything FFmpeg decodes), or a video with --frame.")
    var image: String?

    @Option(help: "Frame of a video to embed, counting from 0.")
    var frame = 0

    @Option(help: "Resize the picture to exactly HxW (height first) before embedding.")
    var size: String?

    @Flag(help: "Also compute dense patch features (ClearCLIP, in the joint space).")
    var dense = false

    @Option(help: "Write the tensors to FILE.safetensors instead of printing similarities.")
    var out: String?

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard clip != nil || dino != nil else { throw ValidationError("give --clip, --dino, or both") }
        guard !texts.isEmpty || image != nil else { throw ValidationError("give --text, --image, or both") }
        guard clip != nil || (texts.isEmpty && vocabulary.isEmpty && !dense) else {
            throw ValidationError("--text, --label, --vocab and --dense need --clip")
        }
        guard dino == nil || image != nil else { throw ValidationError("--dino embeds an --image") }
        guard levels == nil || dino != nil else { throw ValidationError("--levels are DINOv2's: they need --dino") }
        if let levels, parseLevels(levels) == nil {
            throw ValidationError("--levels must be layer numbers separated by commas (1,4,8), not '\(levels)'")
        }
        guard vocabulary.isEmpty || (image != nil && out == nil && texts.isEmpty) else {
            throw ValidationError("--label and --vocab classify an --image; they go without --text and --out")
        }
        guard topK > 0 else { throw ValidationError("--top-k must be positive, not \(topK)") }
        guard image != nil || (size == nil && !dense) else { throw ValidationError("--size and --dense need --image") }
        guard frame >= 0 else { throw ValidationError("--frame must be 0 or more, not \(frame)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        if let out, !out.hasSuffix(".safetensors") { throw ValidationError("--out must end in .safetensors, not '\(out)'") }
        if let size, parseSize(size) == nil { throw ValidationError("--size must be HxW with positive integers (224x224), not '\(size)'") }
    }

    func parseLevels(_ text: String) -> [Int]? {
        let levels = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !levels.isEmpty, levels.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        return levels.compactMap { $0 }
    }

    func parseSize(_ text: String) -> (h: Int, w: Int)? {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0 else { return nil }
        return (h, w)
    }

    func run() throws {
        try runReporting {
            let backend = try backendOptions.open(threads: threads)
            let picture = try image.map { try loadRGBImage($0, frame: frame) }
            let target = size.flatMap(parseSize)
            var tensors: [(name: String, value: SafeTensorsValue)] = []
            var printed: [String] = []
            if let clip {
                let model = try CLIP.load(clip, backend: backend)
                var textEmbeds: Tensor?
                if !texts.isEmpty {
                    let tokenizer = try CLIPTokenizer.forModel(clip)
                    let ids = texts.map(tokenizer.tokenize)
                    let embeds = backend.download(try model.text(ids))
                    tensors.append(("text.input_ids", .int32(shape: [ids.count, model.text.contextLength], values: ids.flatMap { $0 })))
                    tensors.append(("text.embeds", .float32(embeds)))
                    textEmbeds = embeds
                }
                var imageEmbeds: Tensor?
                if let picture {
                    let target = target ?? (model.config.imageSize, model.config.imageSize)
                    try checkPatches(target, model.config.patchSize, model: "CLIP")
                    try model.checkFits(height: target.h, width: target.w)
                    let pixels = modelPixels(rgb: picture.pixels, height: picture.height, width: picture.width, size: target,
                                             mean: model.config.imageMean, std: model.config.imageStd)
                    let (pooled, features) = model.vision(backend.upload(pixels), dense: dense)
                    imageEmbeds = backend.download(pooled)
                    tensors.append(("image.embeds", .float32(imageEmbeds!)))
                    if let features { tensors.append(("image.dense", .float32(backend.download(features)))) }
                }
                if out == nil, !vocabulary.isEmpty, let imageEmbeds {
                    let (labels, _) = try vocabulary.embeddings(vocabulary.resolve(), clip: clip, backend: backend, model: model)
                    printSimilarities(names: labels.labels.map(\.name), rows: labels.labels.indices.map { Array(labels.row($0)) },
                                      imageEmbeds: imageEmbeds, logitScale: model.logitScale, limit: topK)
                } else if out == nil, let textEmbeds {
                    let width = textEmbeds.shape[1], values = textEmbeds.toArray()
                    let rows = texts.indices.map { normalized(values[($0 * width)..<(($0 + 1) * width)]) }
                    if let imageEmbeds {
                        printSimilarities(names: texts, rows: rows, imageEmbeds: imageEmbeds, logitScale: model.logitScale, limit: texts.count)
                    } else {
                        for (text, row) in zip(texts, rows) { print("\(text)\t|embedding| = 1, first values \(row.prefix(4).map { String(format: "%.4f", $0) })") }
                    }
                } else if let imageEmbeds {
                    printed.append("image embedding: \(imageEmbeds.toArray().map { String(format: "%.4f", $0) }.joined(separator: " "))")
                }
            }
            if let dino, let picture {
                let model = try Dinov2Model.load(dino, backend: backend)
                let native = model.config.imageSize / model.config.patchSize * model.config.patchSize
                let target = target ?? (native, native)
                try checkPatches(target, model.config.patchSize, model: "DINOv2")
                try model.checkFits(height: target.h, width: target.w)
                let pixels = modelPixels(rgb: picture.pixels, height: picture.height, width: picture.width, size: target,
                                         mean: model.config.imageMean, std: model.config.imageStd)
                let levels = levels.flatMap(parseLevels) ?? []
                let output = try model(backend.upload(pixels), levels: Set(levels))
                tensors.append(("dino.last", .float32(backend.download(output.last))))
                tensors.append(("dino.pooled", .float32(backend.download(output.pooled))))
                for level in levels.sorted() where !tensors.contains(where: { $0.name == "dino.hidden.\(level)" }) {
                    tensors.append(("dino.hidden.\(level)", .float32(backend.download(output.hidden[level]!))))
                }
                let tokens = backend.shape(output.last)[1]
                printed.append("\(model.config.summary): \(tokens) tokens (class, \(model.config.registers) registers, "
                               + "\(output.grid.h)x\(output.grid.w) patches); class token "
                               + backend.download(output.pooled).toArray().prefix(8).map { String(format: "%.4f", $0) }.joined(separator: " ") + " ...")
            }
            if let out {
                try writeSafeTensors(tensors, to: out)
            } else {
                printed.forEach { print($0) }
            }
        }
    }

    /// Both sides of `size` must be multiples of a model's patch.
    private func checkPatches(_ size: (h: Int, w: Int), _ patch: Int, model: String) throws {
        guard size.h % patch == 0, size.w % patch == 0 else {
            throw CommandError("--size \(size.h)x\(size.w): both sides must be multiples of \(model)'s patch size \(patch)")
        }
    }

    /// The zero-shot table: cosine of the picture with each unit-norm row, and the softmax over
    /// rows of the cosines times exp(logit scale), best first, `limit` rows.
    private func printSimilarities(names: [String], rows: [[Float]], imageEmbeds: Tensor, logitScale: Float, limit: Int) {
        let picture = normalized(imageEmbeds.toArray())
        let cosines = rows.map { zip($0, picture).reduce(0) { $0 + $1.0 * $1.1 } }
        let scale = Foundation.exp(logitScale)
        let top = cosines.max() ?? 0
        let exps = cosines.map { Foundation.exp(scale * ($0 - top)) }, sum = exps.reduce(0, +)
        print("probability  cosine  text")
        for i in cosines.indices.sorted(by: { cosines[$0] > cosines[$1] }).prefix(limit) {
            print(String(format: "%10.1f%%  %6.3f  ", 100 * exps[i] / sum, cosines[i]) + names[i])
        }
    }
}
