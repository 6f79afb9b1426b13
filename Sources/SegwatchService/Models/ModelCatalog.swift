import Foundation

/// The models `segwatch models` knows, from where their authors publish them: Meta's SAM,
/// MobileSAM's repository, OpenAI's CLIP files (whose URLs carry their SHA-256) and, for when
/// OpenAI's host fails (it has answered 404 since October 2025: openai/CLIP issue 516), the
/// transformers-layout copies OpenAI published on the Hugging Face hub; Meta's DINOv2 in the
/// transformers layout on the hub.
public enum ModelCatalog {
    /// OpenAI's CLIP on the hub: `config.json` (in git, not Git LFS: no SHA-256 is published
    /// for it) and `pytorch_model.bin`, whose SHA-256 is the hub's Git LFS listing of the file.
    private static func hub(_ repository: String, weights: String, listing: String) -> ModelSource {
        let base = "https://huggingface.co/openai/\(repository)/resolve/main/"
        return ModelSource(name: "huggingface", files: [
            ModelFile(name: "config.json", url: base + "config.json", sha256: nil),
            ModelFile(name: "pytorch_model.bin", url: base + "pytorch_model.bin", sha256: weights),
        ], digests: "pytorch_model.bin: Git LFS details of \(listing); config.json: none published")
    }

    /// Meta's DINOv2 on the hub, at the commit the digests belong to: the hub's Git LFS
    /// SHA-256 of `model.safetensors`, and the files' SHA-256 at that commit for the two JSON
    /// files. (huggingface.co does not answer from the machines segwatch is built on: these were
    /// read from projects that pin the same commit and record each file's SHA-256, at least
    /// two of them agreeing unless `digests` says otherwise.)
    private static func dino(_ name: String, _ repository: String, revision: String, config: String?, weights: String?,
                             preprocessor: String?, digests: String, about: String) -> ModelEntry {
        let base = "https://huggingface.co/facebook/\(repository)/resolve/\(revision)/"
        return ModelEntry(name: name, kind: .dino, sources: [ModelSource(name: "huggingface", files: [
            ModelFile(name: "config.json", url: base + "config.json", sha256: config),
            ModelFile(name: "model.safetensors", url: base + "model.safetensors", sha256: weights),
            ModelFile(name: "preprocessor_config.json", url: base + "preprocessor_config.json", sha256: preprocessor),
        ], digests: "facebook/\(repository) at \(revision): \(digests)")], about: about)
    }

    /// `preprocessor_config.json` of every DINOv2 repository whose digest is known: one file.
    private static let dinoPreprocessor = "14e780d86fa1861f8751f868d7f45425b5feb55c38ca26f152ca5097ab30f828"

    private static func openAI(_ digest: String, _ file: String) -> ModelSource {
        ModelSource(name: "openai", files: [ModelFile(name: file, url: "https://openaipublic.azureedge.net/clip/models/\(digest)/\(file)",
                                                       sha256: digest)],
                    digests: "the URL (openai/CLIP clip/clip.py _MODELS)")
    }

    public static let builtIn: [ModelEntry] = [
        ModelEntry(name: "mobile_sam", kind: .sam, source: "github", url: "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
                   sha256: "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", about: "MobileSAM (TinyViT), 39 MB"),
        ModelEntry(name: "sam_vit_b", kind: .sam, source: "meta", url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
                   sha256: "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", about: "SAM ViT-B, 358 MB"),
        ModelEntry(name: "sam_vit_l", kind: .sam, source: "meta", url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
                   sha256: "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", about: "SAM ViT-L, 1.2 GB"),
        ModelEntry(name: "sam_vit_h", kind: .sam, source: "meta", url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
                   sha256: "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", about: "SAM ViT-H, 2.4 GB"),
        ModelEntry(name: "clip_vit_b16", kind: .clip, sources: [
            openAI("5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"),
            // The file as added in the repository's first commit ("add model", 0bcfab3), unchanged since.
            hub("clip-vit-base-patch16", weights: "ec89c7b09c749a60aae3c9cd910516f24b58214a7df060b48962d14c469cfbf0",
                listing: "https://huggingface.co/openai/clip-vit-base-patch16/blob/refs%2Fpr%2F4/pytorch_model.bin (add model, 0bcfab3)"),
        ], about: "OpenAI CLIP ViT-B/16, 335 MB"),
        ModelEntry(name: "clip_vit_l14", kind: .clip, sources: [
            openAI("b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"),
            hub("clip-vit-large-patch14", weights: "f1a17cdbe0f36fec524f5cafb1c261ea3bbbc13e346e0f74fc9eb0460dedd0d3",
                listing: "https://huggingface.co/openai/clip-vit-large-patch14/blob/refs%2Fpr%2F4/pytorch_model.bin (add model, e4d7ab3)"),
        ], about: "OpenAI CLIP ViT-L/14, 890 MB"),
        ModelEntry(name: "clip_vit_l14_336", kind: .clip, sources: [
            openAI("3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px.pt"),
            hub("clip-vit-large-patch14-336", weights: "c6032c2e0caae3dc2d4fba35535fa6307dbb49df59c7e182b1bc4b3329b81801",
                listing: "https://huggingface.co/openai/clip-vit-large-patch14-336/blob/main/pytorch_model.bin (add model, a2ab452)"),
        ], about: "OpenAI CLIP ViT-L/14 at 336, 891 MB"),
        dino("dinov2_small", "dinov2-small", revision: "ed25f3a31f01632728cabb09d1542f84ab7b0056",
             config: "1809f83e3bdb1609a501a610ad4a742f4fd8ae44d72ca4aa0df52d1f2ac8628d",
             weights: "ae1e99fcefd534ed978cdeb8326f08030c96e28b7a81ffcbc98a857c84d14be1", preprocessor: dinoPreprocessor,
             digests: "every file's SHA-256 and size (88,249,960 bytes) as pinned by several projects",
             about: "Meta DINOv2 ViT-S/14, 88 MB"),
        dino("dinov2_base", "dinov2-base", revision: "f9e44c814b77203eaa57a6bdbbd535f21ede1415",
             config: "f7ff4cfa73d2f70647dbf6950541ad25d73082d54c2e7e9bded160c7656b2a70",
             weights: "d73036b56966966d07975d696bde331762f37297e2f095de8cea0040c3aa0841", preprocessor: dinoPreprocessor,
             digests: "every file's SHA-256 and size (346,345,912 bytes) as pinned by several projects",
             about: "Meta DINOv2 ViT-B/14, 346 MB"),
        dino("dinov2_large", "dinov2-large", revision: "47b73eefe95e8d44ec3623f8890bd894b6ea2d6c",
             config: "12df51c069a2dc1305e34ba71ef58bc2407ea553b75f4722a1715c1bce3bbed0",
             weights: "399fba97a95f22c36834418bc69373364a99af3a1153da1c0fb31db567c92e23", preprocessor: dinoPreprocessor,
             digests: "every file's SHA-256 and size (1,217,522,888 bytes) as pinned by several projects",
             about: "Meta DINOv2 ViT-L/14, 1.2 GB"),
        dino("dinov2_small_reg", "dinov2-with-registers-small", revision: "0d9846e56b43a21fa46d7f3f5070f0506a5795a9",
             config: nil, weights: nil, preprocessor: nil,
             digests: "none found (the commit is pinned by several projects, no digest of its files): "
                 + "the first fetch needs --trust-on-first-use and pins what it got",
             about: "Meta DINOv2 ViT-S/14 with 4 registers, 89 MB"),
        dino("dinov2_base_reg", "dinov2-with-registers-base", revision: "a1d738ccfa7ae170945f210395d99dde8adb1805",
             config: "6af60aa760138fc90db0ba37b7701730b140b9bf1742514412d03050e72bf7e0",
             weights: "7a6f7b3b9fa4b8732e707476a03cd6cdce210048582f21aafb7991c17d98e362", preprocessor: dinoPreprocessor,
             digests: "every file's SHA-256 as pinned by several projects",
             about: "Meta DINOv2 ViT-B/14 with 4 registers, 347 MB"),
        dino("dinov2_large_reg", "dinov2-with-registers-large", revision: "e4c89a4e05589de9b3e188688a303d0f3c04d0f3",
             config: "03eee42f646659a9480f8911a81fdd81efeedd7ff39083c8e36398068daf72f5",
             weights: "edccedab2c4e164e80833096de89a32a6e8d7365870499a066a61dbc8894b42b", preprocessor: dinoPreprocessor,
             digests: "model.safetensors' SHA-256 as pinned by two projects; the JSON files' by one",
             about: "Meta DINOv2 ViT-L/14 with 4 registers, 1.2 GB"),
    ]

    /// The built-in entries, with those of `file` (a JSON array of entries: a mirror, or
    /// checkpoints of one's own) added or replacing the built-in ones of the same name.
    public static func entries(adding file: String?) throws -> [ModelEntry] {
        guard let file else { return builtIn }
        let extra: [ModelEntry]
        do {
            extra = try JSONDecoder().decode([ModelEntry].self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch let error as DecodingError {
            throw ModelError.badCatalog(file: file, reason: "\(describe(error)); expected a JSON array of {\"name\", \"kind\": \"sam\", \"clip\" or \"dino\", "
                                        + "\"url\", \"sha256\"} or {\"name\", \"kind\", \"sources\": [{\"name\", \"files\": [{\"name\", \"url\", \"sha256\"}]}]}")
        } catch {
            throw ModelError.badCatalog(file: file, reason: error.localizedDescription)
        }
        let safeName = #"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"#
        for entry in extra {
            guard entry.name.range(of: safeName, options: .regularExpression) != nil else {
                throw ModelError.badCatalog(file: file, reason: "model name '\(entry.name)': expected letters, digits, '_', '-' and '.'")
            }
            guard !entry.sources.isEmpty else { throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': no sources") }
            for source in entry.sources {
                guard source.name.range(of: safeName, options: .regularExpression) != nil, !source.files.isEmpty else {
                    throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': source '\(source.name)' needs a plain name and at least one file")
                }
                for item in source.files {
                    guard item.name.range(of: safeName, options: .regularExpression) != nil else {
                        throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': file name '\(item.name)': expected letters, digits, '_', '-' and '.'")
                    }
                    if let digest = item.sha256, digest.range(of: "^[0-9a-f]{64}$", options: .regularExpression) == nil {
                        throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': sha256 '\(digest)' is not 64 lowercase hex digits")
                    }
                }
            }
        }
        let names = Set(extra.map(\.name))
        return builtIn.filter { !names.contains($0.name) } + extra
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, context): "entry \(context.codingPath.map(\.stringValue).joined(separator: ".")): missing '\(key.stringValue)'"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        @unknown default: "\(error)"
        }
    }
}
