import Foundation

/// One file of a model as a source publishes it.
public struct ModelFile: Codable, Sendable, Equatable {
    /// The file's name in the model's folder (and under a mirror's base URL).
    public var name: String
    public var url: String
    /// The published SHA-256, or nil where the source publishes none: the first fetch then
    /// needs `--trust-on-first-use`, and pins the digest it got from then on.
    public var sha256: String?

    public init(name: String, url: String, sha256: String?) {
        (self.name, self.url, self.sha256) = (name, url, sha256)
    }

    /// A file named after the URL's last component.
    public init(url: String, sha256: String?) {
        self.init(name: String(url.split(separator: "/").last ?? Substring(url)), url: url, sha256: sha256)
    }
}

/// Where a model is published: one checkpoint file (SAM's `.pth`, OpenAI's `.pt`) or the
/// files of a folder (the transformers layout: `config.json` and the weights).
public struct ModelSource: Codable, Sendable, Equatable {
    /// A short name: the folder of a multi-file source in the cache, and what errors call it.
    public var name: String
    public var files: [ModelFile]
    /// Where the digests come from.
    public var digests: String?

    public var isFolder: Bool { files.count > 1 }
}

/// A published model segwatch can fetch: its sources, tried in order.
public struct ModelEntry: Decodable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case sam, clip, dino }

    public var name: String
    public var kind: Kind
    public var sources: [ModelSource]
    public var about: String?

    public init(name: String, kind: Kind, sources: [ModelSource], about: String?) {
        (self.name, self.kind, self.sources, self.about) = (name, kind, sources, about)
    }

    /// One file from one place (`source`), named after the URL's last component.
    public init(name: String, kind: Kind, source: String, url: String, sha256: String, about: String?) {
        self.init(name: name, kind: kind, sources: [ModelSource(name: source, files: [ModelFile(url: url, sha256: sha256)])], about: about)
    }

    private enum Keys: String, CodingKey { case name, kind, about, sources, url, sha256 }

    /// A catalog file's entry: `sources`, or the short form of one file, `url` and `sha256`
    /// (`"sha256": null` where no digest is published: said, never left out by mistake).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let (name, kind) = (try container.decode(String.self, forKey: .name), try container.decode(Kind.self, forKey: .kind))
        let about = try container.decodeIfPresent(String.self, forKey: .about)
        if container.contains(.sources) {
            self.init(name: name, kind: kind, sources: try container.decode([ModelSource].self, forKey: .sources), about: about)
        } else {
            let url = try container.decode(String.self, forKey: .url)
            guard container.contains(.sha256) else {
                throw DecodingError.keyNotFound(Keys.sha256, .init(codingPath: container.codingPath,
                                                                   debugDescription: "no sha256 (null where none is published)"))
            }
            let file = ModelFile(url: url, sha256: try container.decodeIfPresent(String.self, forKey: .sha256))
            self.init(name: name, kind: kind, sources: [ModelSource(name: "published", files: [file])], about: about)
        }
    }
}
