import ArgumentParser
import CMalloc
import Foundation
import Logging
import SegwatchService

/// The `segwatch` command line.
@main
struct Segwatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segwatch",
        abstract: "Watch video and report the regions in each frame and what they are.",
        discussion: """
            Inputs are anything FFmpeg reads: a file, rtsp://, http(s)://, a V4L2 camera \
            (/dev/videoN), or a lavfi graph (lavfi:testsrc=size=320x240:rate=25).
            """,
        version: segwatchVersion,
        subcommands: [Run.self, Serve.self, ConfigCommand.self, Tail.self, Search.self, Relabel.self, Submit.self, Worker.self, Jobs.self, Models.self, Devices.self, Probe.self, Record.self, Segment.self, Embed.self, Vocab.self, Label.self, Eval.self, Pairs.self, Features.self, Train.self, Bench.self]
    )

    /// `run --profile FILE` is expanded into the file's options before parsing (see `Profile`).
    static func main() async {
        // Tensor buffers are megabytes: a fixed mmap threshold keeps each
        // in its own mapping, returned to the system when freed. glibc's default raises the
        // threshold after such frees, then serves them from the heap, which fragments and keeps
        // the resident size growing over a long run.
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 20)
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let arguments: [String]
        do {
            arguments = try Profile.expand(Array(CommandLine.arguments.dropFirst()))
        } catch {
            printError("\(error)")
            Glibc.exit(2)
        }
        await main(arguments)
    }
}

let segwatchVersion = "0.1.0"
