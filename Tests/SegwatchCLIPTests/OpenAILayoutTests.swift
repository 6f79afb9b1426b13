import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// OpenAI's own files (`ViT-B-16.pt`): one file of OpenAI's names, no configuration. The
/// configuration comes from the shapes as OpenAI's `build_model` reads them, and the model
/// is the one open_clip builds from the same tensors and an explicit configuration.
@Suite struct OpenAILayoutTests {
    /// The shapes the test chooses; the loader must find each of them in the tensors.
    static let width = 64, layers = 2, patch = 8, grid = 2, textWidth = 128, textLayers = 1
    static let context = 7, vocab = 50, embed = 16

    /// OpenAI-named random tensors of those shapes.
    static func tensors(extras: Bool) -> [(name: String, tensor: Tensor)] {
        var random = SplitMix(seed: 7)
        func t(_ shape: [Int], scale: Float = 0.1) -> Tensor {
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in scale * (Float(random.next() % 2001) / 1000 - 1) })
        }
        var result: [(name: String, tensor: Tensor)] = []
        func blocks(_ prefix: String, width w: Int, count: Int) {
            for i in 0..<count {
                let p = "\(prefix)transformer.resblocks.\(i)."
                result += [(p + "ln_1.weight", t([w], scale: 1)), (p + "ln_1.bias", t([w])),
                           (p + "attn.in_proj_weight", t([3 * w, w])), (p + "attn.in_proj_bias", t([3 * w])),
                           (p + "attn.out_proj.weight", t([w, w])), (p + "attn.out_proj.bias", t([w])),
                           (p + "ln_2.weight", t([w], scale: 1)), (p + "ln_2.bias", t([w])),
                           (p + "mlp.c_fc.weight", t([4 * w, w])), (p + "mlp.c_fc.bias", t([4 * w])),
                           (p + "mlp.c_proj.weight", t([w, 4 * w])), (p + "mlp.c_proj.bias", t([w]))]
            }
        }
        result += [("visual.class_embedding", t([width])), ("visual.positional_embedding", t([grid * grid + 1, width])),
                   ("visual.conv1.weight", t([width, 3, patch, patch])),
                   ("visual.ln_pre.weight", t([width], scale: 1)), ("visual.ln_pre.bias", t([width]))]
        blocks("visual.", width: width, count: layers)
        result += [("visual.ln_post.weight", t([width], scale: 1)), ("visual.ln_post.bias", t([width])),
                   ("visual.proj", t([width, embed])),
                   ("positional_embedding", t([context, textWidth])), ("token_embedding.weight", t([vocab, textWidth]))]
        blocks("", width: textWidth, count: textLayers)
        result += [("ln_final.weight", t([textWidth], scale: 1)), ("ln_final.bias", t([textWidth])),
                   ("text_projection", t([textWidth, embed])), ("logit_scale", Tensor(shape: [], values: [4.6]))]
        if extras {  // OpenAI's TorchScript files keep these settings as tensors too.
            result += [("input_resolution", Tensor(shape: [], values: [16])), ("context_length", Tensor(shape: [], values: [7])),
                       ("vocab_size", Tensor(shape: [], values: [50]))]
        }
        return result
    }

    // Guards the shape reading (each of the test's choices found) and that the file runs the
    // very model open_clip's layout runs from the same tensors: text, pooled and dense.
    @Test func fileRunsAsTheSameModelAsAnOpenCLIPFolder() throws {
        let folder = try TemporaryFolder()
        let file = folder.path("ViT-Test.pt.safetensors")
        try writeSafeTensors(Self.tensors(extras: true), to: file)

        let config = try CLIPConfig.load(file)
        #expect(config.layout == .openAI)
        #expect(config.vision == CLIPTowerConfig(width: Self.width, layers: Self.layers, heads: 1, mlpWidth: 4 * Self.width))
        #expect(config.text == CLIPTowerConfig(width: Self.textWidth, layers: Self.textLayers, heads: 2, mlpWidth: 4 * Self.textWidth))
        #expect(config.patchSize == Self.patch && config.imageSize == Self.patch * Self.grid)
        #expect(config.contextLength == Self.context && config.vocabSize == Self.vocab && config.embedDim == Self.embed)
        #expect(config.activation == .quickGelu)

        let openCLIP = folder.url.appendingPathComponent("open_clip")
        try FileManager.default.createDirectory(at: openCLIP, withIntermediateDirectories: true)
        try writeSafeTensors(Self.tensors(extras: false), to: openCLIP.appendingPathComponent("open_clip_model.safetensors").path)
        let json = """
            {"model_cfg": {"embed_dim": \(Self.embed), "quick_gelu": true,
              "vision_cfg": {"image_size": \(Self.patch * Self.grid), "layers": \(Self.layers), "width": \(Self.width), "patch_size": \(Self.patch), "head_width": 64},
              "text_cfg": {"context_length": \(Self.context), "vocab_size": \(Self.vocab), "width": \(Self.textWidth), "heads": 2, "layers": \(Self.textLayers)}}}
            """
        try Data(json.utf8).write(to: openCLIP.appendingPathComponent("open_clip_config.json"))

        let backend = testBackend
        let ours = try CLIP.load(file, backend: backend), theirs = try CLIP.load(openCLIP.path, backend: backend)
        #expect(ours.logitScale == theirs.logitScale)
        let ids: [[Int32]] = [[49, 3, 8, 0, 0, 0, 0], [49, 2, 11, 17, 30, 5, 1]]
        #expect(backend.download(try ours.text(ids)).toArray() == backend.download(try theirs.text(ids)).toArray())
        let pixels = Tensor(shape: [1, 3, 24, 16], values: (0..<(3 * 24 * 16)).map { Float($0 % 17) / 17 - 0.5 })
        let (pooled, dense) = ours.vision(backend.upload(pixels), dense: true)
        let (pooled2, dense2) = theirs.vision(backend.upload(pixels), dense: true)
        #expect(backend.download(pooled).toArray() == backend.download(pooled2).toArray())
        #expect(backend.download(try #require(dense)).toArray() == backend.download(try #require(dense2)).toArray())
        #expect(try CLIPFiles.digest(file) != CLIPFiles.digest(openCLIP.path))
    }

    // Guards the errors: OpenAI's ResNet models, a grid that is not square, and a file of
    // other names each say what the file is and what was expected.
    @Test func filesThatAreNotOpenAIViTsAreNamed() throws {
        let folder = try TemporaryFolder()
        let cases: [(String, [(name: String, tensor: Tensor)], String)] = [
            ("rn50.safetensors", [("visual.layer1.0.conv1.weight", Tensor(shape: [4, 4, 1, 1], values: .init(repeating: 0, count: 16)))], "ResNet"),
            ("grid.safetensors", Self.tensors(extras: false).map {
                $0.name == "visual.positional_embedding" ? ($0.name, Tensor(shape: [6, Self.width], values: .init(repeating: 0, count: 6 * Self.width))) : $0
            }, "square grid"),
            ("other.safetensors", [("image_encoder.patch_embed.proj.weight", Tensor(shape: [1], values: [0]))], "visual.conv1.weight"),
        ]
        for (name, tensors, expected) in cases {
            let path = folder.path(name)
            try writeSafeTensors(tensors, to: path)
            #expect { _ = try CLIPConfig.load(path) } throws: { error in
                "\(error)".contains(path) && "\(error)".contains(expected)
            }
        }
    }
}
