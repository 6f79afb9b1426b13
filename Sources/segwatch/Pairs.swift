import ArgumentParser
import Foundation
import SegwatchPipeline

/// `segwatch pairs`: segment-text pairs for `segwatch features`, from annotations.
struct Pairs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make segment-text pairs (JSON lines, docs/pairs.schema.json) from annotations.",
        discussion: """
            --coco-instances F.json: every annotation of a COCO instances file becomes a pair: its \
            image's file_name, its mask (polygons rasterized as pycocotools does, merged; or its \
            RLE) and its category's name as the text. An annotation that cannot be one is named \
            and skipped (refused with --strict).
            """)

    @Option(help: ArgumentHelp("A COCO instances file (instances_*.json).", valueName: "file.json"))
    var cocoInstances: String

    @Option(help: ArgumentHelp("The pairs file to write.", valueName: "pairs.jsonl"))
    var out: String

    @Flag(help: "Refuse the annotations at the first that cannot be a pair instead of skipping it.")
    var strict = false

    func run() throws {
        try runReporting {
            let (pairs, problems) = try cocoInstancePairs(cocoInstances)
            if let first = problems.first, strict { throw CommandError(first) }
            for problem in problems { printError("warning: \(problem): skipped") }
            var text = ""
            for pair in pairs {
                let data = try JSONSerialization.data(withJSONObject: pair.json, options: [.sortedKeys, .withoutEscapingSlashes])
                text += String(decoding: data, as: UTF8.self) + "\n"
            }
            do { try text.write(toFile: out, atomically: true, encoding: .utf8) } catch {
                throw CommandError("--out \(out): cannot write: \(error.localizedDescription)")
            }
            printError("\(pairs.count) pairs written to \(out)" + (problems.isEmpty ? "" : " (\(problems.count) annotations skipped)"))
        }
    }
}
