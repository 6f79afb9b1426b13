import Foundation
import SegwatchTestSupport
import Testing

/// `segwatch models`: fetched from a loopback HTTP server serving a fixture checkpoint, the
/// digests computed by `sha256sum`, the server's request log showing what was asked for.
@Suite struct ModelsCommandTests {
    static let served = Fixtures.root.appendingPathComponent("sam_vit")
    static let file = "sam_vit_tiny.pth"
    static let size = (try? FileManager.default.attributesOfItem(atPath: served.appendingPathComponent(file).path)[.size] as? Int) ?? 0

    static func sha256sum(_ path: String) throws -> String {
        let result = try runProcess("/usr/bin/sha256sum", [path], timeout: 60)
        return String(result.output.prefix(64))
    }

    /// A cache folder in `folder`, the environment pointing at it, and a catalog naming the
    /// served checkpoint `tiny_sam`.
    struct Setup {
        let folder: TemporaryFolder
        let environment: [String: String]
        let catalog: String
        let installed: String

        init(url: String, sha256: String) throws {
            folder = try TemporaryFolder()
            var environment = ProcessInfo.processInfo.environment
            environment["SEGWATCH_CACHE"] = folder.path("cache")
            self.environment = environment
            catalog = folder.path("catalog.json")
            try Data(#"[{"name": "tiny_sam", "kind": "sam", "url": "\#(url)", "sha256": "\#(sha256)"}]"#.utf8)
                .write(to: URL(fileURLWithPath: catalog))
            installed = folder.path("cache/models/tiny_sam/\(ModelsCommandTests.file)")
        }

        func segwatch(_ arguments: [String], timeout: Double = 120) throws -> ProcessResult {
            try runProcess(segwatchTests.segwatch, arguments, timeout: timeout, environment: environment)
        }
    }

    static func requests(_ log: String) -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    // Guards fetching: a connection broken off halfway is resumed with a Range request from
    // where it stopped, the file installed is the served one, a second fetch downloads
    // nothing, `list` shows it, and its name stands for the file in `--sam`.
    @Test func brokenDownloadResumesAndTheNameResolves() throws {
        let log = try TemporaryFolder()
        defer { log.remove() }
        let server = try HTTPFileServer(folder: Self.served.path, options: ["--cut", String(Self.size / 2), "--log", log.path("requests")])
        defer { server.stop() }
        let digest = try Self.sha256sum(Self.served.appendingPathComponent(Self.file).path)
        let setup = try Setup(url: server.url(Self.file), sha256: digest)
        defer { setup.folder.remove() }

        let fetched = try setup.segwatch(["models", "fetch", "tiny_sam", "--catalog", setup.catalog])
        #expect(fetched.status == 0, "\(fetched.errorOutput)")
        #expect(fetched.output == setup.installed + "\n")
        #expect(try Self.sha256sum(setup.installed) == digest)
        #expect(Self.requests(log.path("requests")) == ["/\(Self.file) bytes=0-", "/\(Self.file) bytes=\(Self.size / 2)-"])
        #expect(!FileManager.default.fileExists(atPath: setup.installed + ".part"))

        let again = try setup.segwatch(["models", "fetch", "tiny_sam", "--catalog", setup.catalog])
        #expect(again.status == 0 && again.output == setup.installed + "\n")
        #expect(Self.requests(log.path("requests")).count == 2, "a fetched model was downloaded again")

        let list = try setup.segwatch(["models", "list", "--catalog", setup.catalog, "--json"])
        let rows = list.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let row = try #require(rows.first { $0["name"] as? String == "tiny_sam" })
        #expect(row["fetched"] as? Bool == true && row["path"] as? String == setup.installed)
        #expect(rows.contains { $0["name"] as? String == "mobile_sam" && $0["fetched"] as? Bool == false })

        let segment = try setup.segwatch(["segment", Fixtures.root.appendingPathComponent("images/bus.png").path,
                                          "--sam", "tiny_sam", "--point", "210,148"])
        #expect(segment.status == 0, "\(segment.errorOutput)")
    }

    // Guards resuming across runs: the part a stopped run left is completed from its end.
    // And a server that ignores ranges (sends the whole file again) still gives the right file.
    @Test(arguments: [false, true])
    func partLeftByAStoppedRunIsCompleted(serverIgnoresRanges: Bool) throws {
        let log = try TemporaryFolder()
        defer { log.remove() }
        let server = try HTTPFileServer(folder: Self.served.path, options: (serverIgnoresRanges ? ["--ignore-range"] : []) + ["--log", log.path("requests")])
        defer { server.stop() }
        let digest = try Self.sha256sum(Self.served.appendingPathComponent(Self.file).path)
        let setup = try Setup(url: server.url(Self.file), sha256: digest)
        defer { setup.folder.remove() }
        try FileManager.default.createDirectory(atPath: (setup.installed as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let whole = try Data(contentsOf: Self.served.appendingPathComponent(Self.file))
        try whole.prefix(3_000_001).write(to: URL(fileURLWithPath: setup.installed + ".part"))

        let fetched = try setup.segwatch(["models", "fetch", "tiny_sam", "--catalog", setup.catalog])
        #expect(fetched.status == 0, "\(fetched.errorOutput)")
        #expect(try Self.sha256sum(setup.installed) == digest)
        #expect(Self.requests(log.path("requests")).first == "/\(Self.file) bytes=3000001-")
    }

    // Guards verification and the mirror option: a file whose SHA-256 is not the published
    // one (the fixture's random weights under MobileSAM's name) is refused, nothing installed.
    @Test func wrongDigestInstallsNothing() throws {
        let server = try HTTPFileServer(folder: Fixtures.root.appendingPathComponent("mobile_sam").path)
        defer { server.stop() }
        let setup = try Setup(url: "unused", sha256: String(repeating: "0", count: 64))
        defer { setup.folder.remove() }
        let result = try setup.segwatch(["models", "fetch", "mobile_sam", "--base-url", "http://127.0.0.1:\(server.port)/"])
        #expect(result.status == 1)
        let actual = try Self.sha256sum(Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path)
        #expect(result.errorOutput.contains("SHA-256 \(actual)") && result.errorOutput.contains("6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"),
                "\(result.errorOutput)")
        let folder = setup.folder.path("cache/models/mobile_sam")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] == [])
        let run = try setup.segwatch(["run", Fixtures.media("bikes.mp4"), "--sam", "mobile_sam", "--clip", "clip_vit_b16"])
        #expect(run.status != 0 && run.errorOutput.contains("segwatch models fetch mobile_sam"), "\(run.errorOutput)")
    }

    // Guards the errors: each names what was wrong, within bounded time.
    @Test func badRequestsAreClearErrors() throws {
        let setup = try Setup(url: "http://127.0.0.1:\(freePort())/\(Self.file)", sha256: String(repeating: "a", count: 64))
        defer { setup.folder.remove() }
        let refused = try setup.segwatch(["models", "fetch", "tiny_sam", "--catalog", setup.catalog], timeout: 60)
        #expect(refused.status == 1 && refused.errorOutput.contains("127.0.0.1") && refused.errorOutput.contains("interrupted"), "\(refused.errorOutput)")

        let unknown = try setup.segwatch(["models", "fetch", "sam_vit_q"])
        #expect(unknown.status != 0 && unknown.errorOutput.contains("sam_vit_q") && unknown.errorOutput.contains("sam_vit_b"))

        let badCatalog = setup.folder.path("bad.json")
        try Data(#"[{"name": "x", "kind": "sam", "url": "http://h/x.pt"}]"#.utf8).write(to: URL(fileURLWithPath: badCatalog))
        let missingKey = try setup.segwatch(["models", "list", "--catalog", badCatalog])
        #expect(missingKey.status != 0 && missingKey.errorOutput.contains(badCatalog) && missingKey.errorOutput.contains("sha256"), "\(missingKey.errorOutput)")
        try Data(#"[{"name": "../x", "kind": "sam", "url": "http://h/x.pt", "sha256": "\#(String(repeating: "a", count: 64))"}]"#.utf8)
            .write(to: URL(fileURLWithPath: badCatalog))
        let escaping = try setup.segwatch(["models", "list", "--catalog", badCatalog])
        #expect(escaping.status != 0 && escaping.errorOutput.contains("../x"), "\(escaping.errorOutput)")
    }

    /// A catalog of one CLIP model, `tiny_clip`, with `sources` (JSON), in a new cache.
    static func clipSetup(_ sources: String) throws -> Setup {
        let setup = try Setup(url: "unused", sha256: String(repeating: "0", count: 64))
        try Data(#"[{"name": "tiny_clip", "kind": "clip", "sources": \#(sources)}]"#.utf8).write(to: URL(fileURLWithPath: setup.catalog))
        return setup
    }

    static let clipFolder = Fixtures.root.appendingPathComponent("clip_hf")

    static func file(_ name: String, _ url: String, _ sha256: String?) -> String {
        #"{"name": "\#(name)", "url": "\#(url)", "sha256": \#(sha256.map { "\"\($0)\"" } ?? "null")}"#
    }

    // Guards the second source: when the first one's file is gone (404), the model comes from
    // the next, a folder of files (transformers layout), each checked; its name then stands
    // for the folder.
    @Test func aSecondSourceServesWhenTheFirstFails() throws {
        let server = try HTTPFileServer(folder: Self.clipFolder.path)
        defer { server.stop() }
        let config = try Self.sha256sum(Self.clipFolder.appendingPathComponent("config.json").path)
        let weights = try Self.sha256sum(Self.clipFolder.appendingPathComponent("model.safetensors").path)
        let setup = try Self.clipSetup("""
            [{"name": "openai", "files": [\(Self.file("ViT-B-16.pt", server.url("ViT-B-16.pt"), String(repeating: "5", count: 64)))]},
             {"name": "hub", "files": [\(Self.file("config.json", server.url("config.json"), config)),
                                       \(Self.file("model.safetensors", server.url("model.safetensors"), weights))]}]
            """)
        defer { setup.folder.remove() }
        let fetched = try setup.segwatch(["models", "fetch", "tiny_clip", "--catalog", setup.catalog])
        let folder = setup.folder.path("cache/models/tiny_clip/hub")
        #expect(fetched.status == 0 && fetched.output == folder + "\n", "\(fetched.errorOutput)")
        #expect(try Self.sha256sum(folder + "/model.safetensors") == weights)
        let list = try setup.segwatch(["models", "list", "--catalog", setup.catalog, "--json"])
        #expect(list.output.contains(#""path":"\#(folder)""#), "\(list.output)")
        let embed = try setup.segwatch(["embed", "--clip", "tiny_clip", "--text", "a photo of a bus", "--out", setup.folder.path("e.safetensors")])
        #expect(embed.status == 0, "\(embed.errorOutput)")
    }

    // Guards trust on first use: a file without a published digest is fetched only when asked,
    // its digest is pinned, and a later fetch of different bytes under that name is refused.
    @Test func anUnpublishedDigestIsPinnedOnFirstUse() throws {
        let changed = try TemporaryFolder()
        defer { changed.remove() }
        let server = try HTTPFileServer(folder: Self.clipFolder.path)
        defer { server.stop() }
        let weights = try Self.sha256sum(Self.clipFolder.appendingPathComponent("model.safetensors").path)
        let sources = { (base: HTTPFileServer) in
            """
            [{"name": "hub", "files": [\(Self.file("config.json", base.url("config.json"), nil)),
                                       \(Self.file("model.safetensors", base.url("model.safetensors"), weights))]}]
            """
        }
        let setup = try Self.clipSetup(sources(server))
        defer { setup.folder.remove() }
        let refused = try setup.segwatch(["models", "fetch", "tiny_clip", "--catalog", setup.catalog])
        #expect(refused.status == 1 && refused.errorOutput.contains("config.json") && refused.errorOutput.contains("--trust-on-first-use"),
                "\(refused.errorOutput)")
        #expect(!FileManager.default.fileExists(atPath: setup.folder.path("cache/models/tiny_clip/hub/model.safetensors")))

        let trusted = try setup.segwatch(["models", "fetch", "tiny_clip", "--catalog", setup.catalog, "--trust-on-first-use"])
        #expect(trusted.status == 0, "\(trusted.errorOutput)")
        let pins = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: setup.folder.path("cache/models/pins.json")))) as? [String: String]
        let config = try Self.sha256sum(Self.clipFolder.appendingPathComponent("config.json").path)
        #expect(pins?["tiny_clip/hub/config.json"] == config)

        // The same names with other bytes: the pinned digest refuses them, even when trusting.
        try FileManager.default.removeItem(atPath: setup.folder.path("cache/models/tiny_clip"))
        try FileManager.default.copyItem(at: Self.clipFolder.appendingPathComponent("model.safetensors"),
                                         to: URL(fileURLWithPath: changed.path("model.safetensors")))
        try Data("{\"changed\": true}\n".utf8).write(to: URL(fileURLWithPath: changed.path("config.json")))
        let other = try HTTPFileServer(folder: changed.path(""))
        defer { other.stop() }
        try Data(#"[{"name": "tiny_clip", "kind": "clip", "sources": \#(sources(other))}]"#.utf8).write(to: URL(fileURLWithPath: setup.catalog))
        let swapped = try setup.segwatch(["models", "fetch", "tiny_clip", "--catalog", setup.catalog, "--trust-on-first-use"])
        #expect(swapped.status == 1 && swapped.errorOutput.contains("pinned") && swapped.errorOutput.contains(config), "\(swapped.errorOutput)")
    }

    // Guards the last resort: when every source fails, the error names each with its reason
    // and says where to put the files by hand; files put there are then checked and taken.
    @Test func everySourceFailingNamesThemAndFilesPlacedByHandAreTaken() throws {
        let dead = "http://127.0.0.1:\(freePort())"
        let config = try Self.sha256sum(Self.clipFolder.appendingPathComponent("config.json").path)
        let weights = try Self.sha256sum(Self.clipFolder.appendingPathComponent("model.safetensors").path)
        let setup = try Self.clipSetup("""
            [{"name": "openai", "files": [\(Self.file("ViT-B-16.pt", dead + "/ViT-B-16.pt", String(repeating: "5", count: 64)))]},
             {"name": "hub", "files": [\(Self.file("config.json", dead + "/config.json", config)),
                                       \(Self.file("model.safetensors", dead + "/model.safetensors", weights))]}]
            """)
        defer { setup.folder.remove() }
        let failed = try setup.segwatch(["models", "fetch", "tiny_clip", "--catalog", setup.catalog], timeout: 90)
        let folder = setup.folder.path("cache/models/tiny_clip/hub")
        #expect(failed.status == 1, "\(failed.errorOutput)")
        for expected in ["every source failed", "openai:", "hub:", "by hand", setup.folder.path("cache/models/tiny_clip") + "/", folder + "/", weights] {
            #expect(failed.errorOutput.contains(expected), "\(expected) is missing: \(failed.errorOutput)")
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: Self.clipFolder.appendingPathComponent(name), to: URL(fileURLWithPath: folder + "/" + name))
        }
        let placed = try setup.segwatch(["models", "fetch", "tiny_clip", "--catalog", setup.catalog], timeout: 90)
        #expect(placed.status == 0 && placed.output == folder + "\n", "\(placed.errorOutput)")
        #expect(!placed.errorOutput.contains("fetching"), "files in place were downloaded again: \(placed.errorOutput)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/model.safetensors.part"))
    }

    static let dinoFolder = Fixtures.root.appendingPathComponent("dinov2")

    // Guards DINOv2 in the catalog: a DINOv2 entry (kind "dino") is fetched as a folder of
    // transformers files, its name then stands for the folder in `--dino`, and not in `--clip`.
    // The built-in entries are listed, and served other bytes under their files' names (the
    // fixture's random weights through `--base-url`), are refused against their digests.
    @Test func dinov2ModelsAreFetchedAndNamed() throws {
        let server = try HTTPFileServer(folder: Self.dinoFolder.path)
        defer { server.stop() }
        let files = try ["config.json", "model.safetensors", "preprocessor_config.json"].map { name in
            Self.file(name, server.url(name), try Self.sha256sum(Self.dinoFolder.appendingPathComponent(name).path))
        }
        let setup = try Setup(url: "unused", sha256: String(repeating: "0", count: 64))
        defer { setup.folder.remove() }
        try Data(#"[{"name": "tiny_dino", "kind": "dino", "sources": [{"name": "hub", "files": [\#(files.joined(separator: ", "))]}]}]"#.utf8)
            .write(to: URL(fileURLWithPath: setup.catalog))
        let fetched = try setup.segwatch(["models", "fetch", "tiny_dino", "--catalog", setup.catalog])
        let folder = setup.folder.path("cache/models/tiny_dino/hub")
        #expect(fetched.status == 0 && fetched.output == folder + "\n", "\(fetched.errorOutput)")
        let out = setup.folder.path("d.safetensors")
        let embed = try setup.segwatch(["embed", "--dino", "tiny_dino", "--image", Fixtures.root.appendingPathComponent("images/bus.png").path, "--size", "28x42", "--out", out])
        #expect(embed.status == 0 && FileManager.default.fileExists(atPath: out), "\(embed.errorOutput)")
        let wrongKind = try setup.segwatch(["embed", "--clip", "dinov2_small", "--text", "a bus"])
        #expect(wrongKind.status != 0 && wrongKind.errorOutput.contains("'dinov2_small' is a dino model; expected a clip model"),
                "\(wrongKind.errorOutput)")

        let list = try setup.segwatch(["models", "list", "--json"])
        let dinos = list.output.split(separator: "\n").filter { $0.contains(#""kind":"dino""#) }
        #expect(dinos.count == 6, "\(list.output)")
        for name in ["dinov2_small", "dinov2_base", "dinov2_large", "dinov2_small_reg", "dinov2_base_reg", "dinov2_large_reg"] {
            #expect(dinos.contains { $0.contains(#""name":"\#(name)""#) }, "\(name) is not listed")
        }
        let mirror = try setup.segwatch(["models", "fetch", "dinov2_small", "--base-url", "http://127.0.0.1:\(server.port)/"])
        #expect(mirror.status == 1 && mirror.errorOutput.contains("1809f83e3bdb1609a501a610ad4a742f4fd8ae44d72ca4aa0df52d1f2ac8628d"),
                "\(mirror.errorOutput)")
        #expect(!FileManager.default.fileExists(atPath: setup.folder.path("cache/models/dinov2_small/huggingface/model.safetensors")))
    }
}
