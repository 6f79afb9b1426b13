// The sentences a label is put into before the text tower sees it.
import Foundation
import SegwatchCheckpoint

public struct PromptTemplates: Sendable, Equatable {
    /// Each holds `{}` where the label goes.
    public let templates: [String]

    /// Scene and object prompts: a subset of the ensemble CLIP's authors used for ImageNet
    /// (what MaskCLIP and ClearCLIP average over), chosen for photos of objects at every scale,
    /// plus the scene sentences open-vocabulary segmentation uses for regions of a larger
    /// picture ("stuff" such as sky or road). Ten prompts per spelling keep a 1,000-label
    /// vocabulary to about a minute on two cores the first time; the cache makes it instant after.
    public static let standard = try! PromptTemplates([
        "a photo of a {}.",
        "a photo of the {}.",
        "a photo of a small {}.",
        "a photo of a large {}.",
        "a close-up photo of a {}.",
        "a cropped photo of the {}.",
        "a bright photo of a {}.",
        "a dark photo of the {}.",
        "a blurry photo of a {}.",
        "there is a {} in the scene.",
    ])

    /// One plain prompt, as CLIP's zero-shot examples and peers.py's `clip-text` use.
    public static let single = try! PromptTemplates(["a photo of a {}."])

    public init(_ templates: [String], origins: [String]? = nil) throws(VocabularyError) {
        guard !templates.isEmpty else { throw .noTemplates }
        for (i, template) in templates.enumerated() where template.firstRange(of: "{}") == nil {
            throw .templateWithoutSlot(origin: origins?[i] ?? "--template \(i + 1)", template: template)
        }
        self.templates = templates
    }

    /// A template file: one per line, `#` comments, blank lines skipped.
    public init(file path: String) throws(VocabularyError) {
        let lines = try readListFile(path, maximumBytes: 1 << 20)
        guard !lines.isEmpty else { throw .emptyFile(path: path) }
        try self.init(lines.map(\.content), origins: lines.map { "\(path):\($0.line)" })
    }

    /// The prompts for one spelling, in template order.
    public func prompts(_ spelling: String) -> [String] {
        templates.map { $0.replacing("{}", with: spelling) }
    }

    /// Identifies the set in cache keys: order matters not to the mean, but a reordered set is
    /// rare enough that hashing it as written is simpler than normalizing it.
    public var digest: UInt64 {
        var hasher = XXH64()
        for template in templates {
            hasher.update(template)
            hasher.update([0])
        }
        return hasher.digest()
    }
}
