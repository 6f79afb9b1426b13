import ArgumentParser
import Foundation
@testable import segwatch
import SegwatchTestSupport
import Testing

/// `run --profile`: the file format, its errors, the shipped profiles, and flags winning.
struct ProfileTests {
    static let profiles = Fixtures.packageRoot.appendingPathComponent("profiles")

    private func write(_ text: String, in folder: TemporaryFolder) throws -> String {
        let path = folder.path("p.toml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func valuesBecomeOptionsAndTheCommandLineWins() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try write("""
            # a comment
            fps = 0.5   # trailing comment
            label = ["car", "a \\"quoted\\" # not a comment"]
            source-name = "cam 1"

            keyframe-every = 4
            background = false
            no-cache = true
            stuff = "road"
            """, in: folder)
        #expect(try Profile(contentsOf: path).arguments
            == ["--fps=0.5", "--label=car", "--label=a \"quoted\" # not a comment", "--source-name=cam 1", "--keyframe-every=4",
                "--no-background", "--no-cache", "--stuff=road"])
        let expanded = try Profile.expand(["run", "in.mp4", "--profile", path, "--fps", "5", "--sam", "s.pt", "--clip", "c"])
        let run = try Run.parse(Array(expanded.dropFirst()))
        #expect(run.analysis.fps == 5 && run.analysis.keyframes.keyframeEvery == 4 && run.sourceName == "cam 1" && run.input.input == "in.mp4")
        #expect(run.vocabulary.labels == ["car", "a \"quoted\" # not a comment"])
        #expect(!run.models.background && run.vocabulary.noCache && run.analysis.stuff == ["road"])
    }

    @Test func mistakesAreNamedWithTheirLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let cases: [(String, String)] = [
            ("fps = 1\nkeyframe_every = 3\n", "p.toml:2: unknown key 'keyframe_every'"),
            ("fps 1\n", "p.toml:1: not TOML"),
            ("fps = 1\nfps = 2\n", "p.toml:2: not TOML"),
            ("source-name = \"open\n", "p.toml:1: not TOML"),
            ("source-name = cam\n", "p.toml:1: not TOML"),
            ("label = [\"a\" \"b\"]\n", "p.toml:1: not TOML"),
            // Values of the wrong type were once misread: `fps = true` took the input path as
            // its value, `max-age = false` was dropped. Now each is named with its line.
            ("# rate\nfps = true\n", "p.toml:2: 'fps' takes a number, not the boolean true"),
            ("max-age = false\n", "p.toml:1: 'max-age' takes a number, not the boolean false"),
            ("source-name = 3\n", "p.toml:1: 'source-name' takes a string in double quotes, not the integer 3"),
            ("label = [\"a\", 1]\n", "p.toml:1: 'label' takes a string or an array of strings, not an array of other things"),
            ("no-cache = \"yes\"\n", "p.toml:1: 'no-cache' takes true or false"),
            ("[run]\nfps = 1\n", "p.toml:1: unknown key 'run'"),
        ]
        for (text, message) in cases {
            let path = try write(text, in: folder)
            #expect { try Profile(contentsOf: path) } throws: { "\($0)".contains(message) }
        }
        #expect { try Profile(contentsOf: folder.path("missing.toml")) } throws: { "\($0)".contains("missing.toml: cannot read the profile") }
    }

    // Through the binary: a bad value gets the flag's own check, an unreadable file is named.
    @Test func theBinaryChecksProfileValuesLikeFlags() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try write("fps = -1\n", in: folder)
        let bad = try runProcess(segwatch, ["run", "x.mp4", "--profile", path, "--sam", "s", "--clip", "c", "--label", "car"])
        #expect(bad.status != 0 && bad.errorOutput.contains("--fps must be in 0...1000"), "\(bad.errorOutput)")
        let missing = try runProcess(segwatch, ["run", "x.mp4", "--profile", folder.path("none.toml")])
        #expect(missing.status != 0 && missing.errorOutput.contains("none.toml: cannot read the profile"), "\(missing.errorOutput)")
    }

    // Every key a profile may set is an option of run, and the shipped profiles parse with
    // values run accepts.
    @Test func shippedProfilesAndKeysMatchRun() throws {
        let help = try runProcess(segwatch, ["run", "--help"]).output
        for key in Profile.keys { #expect(help.contains("--\(key)"), "run has no --\(key)") }
        let shipped = try FileManager.default.contentsOfDirectory(atPath: Self.profiles.path).filter { $0.hasSuffix(".toml") }
        #expect(Set(shipped).isSuperset(of: ["cpu-mobilesam.toml", "gpu-sam-vit-h.toml"]))
        for name in shipped {
            let expanded = try Profile.expand(["run", "in.mp4", "--profile", Self.profiles.appendingPathComponent(name).path,
                                               "--sam", "s.pt", "--clip", "c", "--label", "car"])
            #expect(throws: Never.self, "\(name)") { _ = try Run.parse(Array(expanded.dropFirst())) }
        }
    }
}
