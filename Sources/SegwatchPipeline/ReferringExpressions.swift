// Segment-text pairs from RefCOCO-style referring expressions: the refer toolkit's refs
// (`refs(unc).p` and its kin, as JSON), each naming one COCO annotation (`ann_id`) and giving
// the sentences that refer to it. The mask is that annotation's, from the instances file the
// refs were made over; the texts are the sentences.
import Foundation
import SegwatchSAM

/// The pairs of a refs file (a JSON array of refs, or one ref a line) over a COCO instances
/// file: one pair per referred annotation, with the sentences of every ref to it (`sent`, or
/// `raw` where a sentence has no `sent`, or plain strings), each once, in order of appearance.
/// `split` keeps only the refs of that split. A ref that cannot be a pair, and an annotation
/// that has no mask, is named in `problems`.
public func referringExpressionPairs(refs path: String, instances: String, split: String? = nil)
    throws(PipelineError) -> (pairs: [SegmentTextPair], problems: [String]) {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw .unusable(path: path, reason: "cannot read: \(error.localizedDescription)") }
    let refs: [(number: Int, ref: Any)]
    if let array = (try? JSONSerialization.jsonObject(with: data)) as? [Any] {
        refs = array.enumerated().map { ($0.offset + 1, $0.element) }
    } else {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        refs = lines.enumerated().compactMap { index, line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { return nil }
            return (index + 1, (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) ?? NSNull())
        }
    }
    guard refs.contains(where: { $0.ref is [String: Any] }) else {
        throw .unusable(path: path, reason: "not refs as JSON (an array of refs, or one a line); the refer toolkit's pickle becomes that with "
                        + "python3 -c \"import pickle, json, sys; json.dump(pickle.load(open(sys.argv[1], 'rb')), open(sys.argv[2], 'w'))\" REFS.p REFS.json")
    }
    let (annotations, instanceProblems) = try readCOCOInstances(instances)
    var byID: [Int: COCOInstance] = [:]
    for annotation in annotations { if let id = annotation.id { byID[id] = annotation } }
    var order: [Int] = [], texts: [Int: [String]] = [:], firstNumber: [Int: Int] = [:], problems: [String] = []
    for (number, value) in refs {
        let name = "\(path): ref \(number)"
        guard let ref = value as? [String: Any] else { problems.append("\(name): not a JSON object"); continue }
        if let split {
            guard let own = ref["split"] as? String else { problems.append("\(name): no \"split\" to match --split"); continue }
            if own != split { continue }
        }
        guard let annotationID = ref["ann_id"] as? Int else { problems.append("\(name): no \"ann_id\" (the COCO annotation it refers to)"); continue }
        guard byID[annotationID] != nil else {
            let why = instanceProblems.first { $0.hasPrefix("\(instances): annotation \(annotationID):") }
            problems.append("\(name): ann_id \(annotationID): " + (why ?? "no such annotation in \(instances)")); continue
        }
        let sentences = (ref["sentences"] as? [Any] ?? []).compactMap { sentence -> String? in
            let text = sentence as? String ?? (sentence as? [String: Any]).flatMap { $0["sent"] as? String ?? $0["raw"] as? String }
            return text?.trimmingCharacters(in: .whitespacesAndNewlines)
        }.filter { !$0.isEmpty }
        guard !sentences.isEmpty else { problems.append("\(name): no \"sentences\" (objects with \"sent\" or \"raw\", or strings)"); continue }
        if texts[annotationID] == nil { order.append(annotationID); firstNumber[annotationID] = number }
        for sentence in sentences where !texts[annotationID, default: []].contains(sentence) { texts[annotationID, default: []].append(sentence) }
    }
    let pairs = order.map { id in
        SegmentTextPair(image: byID[id]!.image, mask: byID[id]!.mask, texts: texts[id]!, granularity: "object", line: firstNumber[id]!)
    }
    return (pairs, problems)
}
