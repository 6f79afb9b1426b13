import ArgumentParser
import SegwatchBackends
import Foundation
import SegwatchPipeline
import SegwatchService

/// `segwatch pairs`: segment-text pairs for `segwatch features`, from annotations.
struct Pairs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make segment-text pairs (JSON lines, docs/pairs.schema.json) from annotations.",
        discussion: """
            --coco-instances F.json: every annotation of a COCO instances file becomes a pair: its \
            image's file_name, its mask (polygons rasterized as pycocotools does, merged; or its \
            RLE) and its category's name as the text.

            --refs REFS.json --coco-instances F.json [--split S]: RefCOCO-style referring \
            expressions (RefCOCO, RefCOCO+, RefCOCOg: the refer toolkit's refs, as a JSON array or \
            one ref a line): each referred annotation's mask, from the instances file the refs were \
            made over, with the sentences of every ref to it as its texts. The toolkit's \
            refs(unc).p becomes JSON with one line of Python (the error says which).

            --boxes F.jsonl --images DIR --sam CKPT: box-text pairs from any grounding model (one \
            JSON object a line: image, box [x0, y0, x1, y1] in pixels, text or texts, optional \
            granularity) become masks: SAM prompted with each box, the multimask output with the \
            best predicted IoU, holes and islands under --min-region-area pixels removed, and \
            masks of one picture whose IoU is at least --nms merged into one segment with all \
            their texts.

            A line or annotation that cannot be a pair is named and skipped (refused with --strict).
            """)

    @Option(help: ArgumentHelp("A COCO instances file (instances_*.json).", valueName: "file.json"))
    var cocoInstances: String?

    @Option(help: ArgumentHelp("Referring expressions (refs as JSON) over --coco-instances.", valueName: "refs.json"))
    var refs: String?

    @Option(help: ArgumentHelp("Only the refs of this split (train, val, testA, ...).", valueName: "split"))
    var split: String?

    @Option(help: ArgumentHelp("Box-text pairs (JSON lines: image, box, text).", valueName: "boxes.jsonl"))
    var boxes: String?

    @Option(help: ArgumentHelp("The folder the boxes' image paths are relative to.", valueName: "dir"))
    var images: String?

    @Option(help: "SAM checkpoint or model name, for --boxes.", transform: ModelArgument.sam)
    var sam: String?

    @Option(help: "Masks of one picture with at least this IoU are one segment (--boxes).")
    var nms = 0.9

    @Option(help: "Holes and islands smaller than this many pixels are removed (--boxes; 0: none).")
    var minRegionArea = 100

    @Option(help: "Threads for SAM.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: ArgumentHelp("The pairs file to write.", valueName: "pairs.jsonl"))
    var out: String

    @Flag(help: "Refuse the annotations at the first that cannot be a pair instead of skipping it.")
    var strict = false

    func validate() throws {
        guard (cocoInstances == nil) != (boxes == nil) else { throw ValidationError("give --coco-instances (with --refs or not) or --boxes") }
        guard refs == nil || cocoInstances != nil else { throw ValidationError("--refs needs --coco-instances: the annotations the refs name") }
        guard split == nil || refs != nil else { throw ValidationError("--split selects refs: give --refs") }
        guard boxes == nil || (images != nil && sam != nil) else { throw ValidationError("--boxes needs --images and --sam") }
        guard (0...1).contains(nms), minRegionArea >= 0 else { throw ValidationError("--nms must be in 0...1 and --min-region-area 0 or more") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
    }

    func run() throws {
        try runReporting {
            var pairs: [SegmentTextPair] = [], problems: [String] = []
            if let cocoInstances, let refs {
                (pairs, problems) = try referringExpressionPairs(refs: refs, instances: cocoInstances, split: split)
            } else if let cocoInstances {
                (pairs, problems) = try cocoInstancePairs(cocoInstances)
            }
            if let boxes {
                let progress = Progress.onTerminal()
                (pairs, problems) = try boxPairs(boxes, images: images!, sam: sam!, backend: try backendOptions.open(threads: threads), minRegionArea: minRegionArea, nms: nms,
                                                 strict: strict, progress: { progress.bar("pairs", done: $0, total: $1, unit: "pictures") })
                progress.clear()
            }
            if let first = problems.first, strict { throw CommandError(first) }
            for problem in problems { printError("warning: \(problem): skipped") }
            var text = ""
            for pair in pairs { text += try jsonText(pair.json) + "\n" }
            do { try text.write(toFile: out, atomically: true, encoding: .utf8) } catch {
                throw CommandError("--out \(out): cannot write: \(error.localizedDescription)")
            }
            printError("\(pairs.count) pairs written to \(out)" + (problems.isEmpty ? "" : " (\(problems.count) skipped)"))
        }
    }
}
