import SegwatchSAM
import Testing

// The pure utilities of the automatic mask generator against segment_anything 1.0
// (utils/amg.py), torchvision 0.29.2, pycocotools 2.0.11 and OpenCV 5.0.0. Expected values
// are printed by make_amg_references.py beside this file (each comment names its section) or
// derived by hand where the comment shows the arithmetic.

/// A mask drawn as rows of `#` (set) and `.`.
private func drawn(_ rows: [String]) -> BinaryMask {
    BinaryMask(height: rows.count, width: rows.first?.count ?? 0,
               pixels: rows.flatMap { $0.map { $0 == "#" ? UInt8(1) : 0 } })
}

/// A mask as rows of `#` and `.`, for readable failures.
private func rows(_ mask: BinaryMask) -> [String] {
    (0..<mask.height).map { y in
        String((0..<mask.width).map { mask.pixels[y * mask.width + $0] != 0 ? "#" : "." })
    }
}

/// make_amg_references.py `pattern_mask()`: a rectangle, a diagonal and the top-left pixel.
private func patternMask() -> BinaryMask {
    var mask = BinaryMask(height: 40, width: 50)
    for y in 5..<30 { for x in 10..<42 { mask.pixels[y * 50 + x] = 1 } }
    for k in 0..<40 { mask.pixels[k * 50 + (k * 7) % 50] = 1 }
    mask.pixels[0] = 1
    return mask
}

struct AMGUtilityTests {
    // MARK: RLE

    // Section "mask_to_rle_pytorch, rle_to_string, area_from_rle" (the string is also what
    // pycocotools' frPyObjects gives): column-major runs starting with a 0-run.
    @Test func smallMaskEncodesAsTheReference() {
        let mask = drawn([".##.", "#..#", "##.#"])
        let rle = maskToRLE(mask)
        #expect(rle == RLE(height: 3, width: 4, counts: [1, 3, 1, 2, 3, 2]))
        #expect(areaFromRLE(rle) == 7)
        #expect(mask.area == 7)
        #expect(rleToString(rle) == "131O20")
        #expect(rleFromString("131O20", height: 3, width: 4) == rle)
        #expect(rleToMask(rle) == mask)
    }

    // Guards multi-group values, negative deltas (counts[i] - counts[i-2] for i > 2) and the
    // 0-run of a mask whose first pixel is set. Same section, "pattern".
    @Test func patternMaskCompressesAsPycocotools() {
        let mask = patternMask()
        let rle = maskToRLE(mask)
        let expectedCounts = [0, 1, 115, 1, 32, 1, 32, 1, 32, 1, 32, 1, 32, 1, 115, 1, 7, 26, 14, 25, 15, 25, 15, 25, 12, 1,
                              2, 25, 15, 25, 15, 25, 8, 1, 6, 25, 1, 1, 13, 25, 15, 25, 15, 25, 13, 1, 1, 25, 15, 25, 15,
                              25, 9, 1, 5, 25, 2, 1, 12, 25, 15, 25, 15, 25, 14, 26, 15, 25, 15, 25, 15, 25, 3, 1, 11, 25,
                              15, 25, 15, 25, 15, 25, 15, 25, 15, 25, 15, 25, 4, 1, 10, 25, 15, 25, 15, 25, 16, 1, 148, 1,
                              32, 1, 32, 1, 32, 1, 32, 1, 32]
        let expectedString = "01c30]M000000000c20dLi07O1000MXOFh0=000IXONh0KXO<h02000NXODh0>000JXOLh0MXO:h03000O11O0000D"
            + "XO8h0400000000000EXO6h050001XOT40\\L00000000"
        #expect(rle.counts == expectedCounts)
        #expect(areaFromRLE(rle) == 824)
        #expect(rleToString(rle) == expectedString)
        #expect(rleFromString(expectedString, height: 40, width: 50) == rle)
        #expect(rleToMask(rle) == mask)
        #expect(mask.box == [0, 0, 49, 39])
    }

    // Section "mask_to_rle_pytorch ...", "empty" and "full"; boxes from "batched_mask_to_box".
    @Test func emptyAndFullMasks() {
        let empty = BinaryMask(height: 2, width: 3)
        #expect(maskToRLE(empty).counts == [6])
        #expect(rleToString(maskToRLE(empty)) == "6")
        #expect(empty.area == 0)
        #expect(empty.box == [0, 0, 0, 0])
        #expect(empty.bboxXYWH == [0, 0, 0, 0])

        let full = BinaryMask(height: 2, width: 3, pixels: [1, 1, 1, 1, 1, 1])
        #expect(maskToRLE(full).counts == [0, 6])
        #expect(rleToString(maskToRLE(full)) == "06")
        #expect(areaFromRLE(maskToRLE(full)) == 6)
        #expect(full.box == [0, 0, 2, 1])
        #expect(full.bboxXYWH == [0, 0, 2, 1])
        #expect(rleToMask(RLE(height: 2, width: 3, counts: [0, 6])) == full)
    }

    // Decoding rejects what pycocotools would read as garbage instead of trapping.
    @Test func malformedStringsDecodeToNil() {
        #expect(rleFromString("131O2", height: 3, width: 4) == nil)  // sums to 10, not 12
        #expect(rleFromString("13a", height: 3, width: 4) == nil)  // 'a' - 48 has the continuation bit: truncated
        #expect(rleFromString("1 1", height: 3, width: 4) == nil)  // below '0'
        #expect(rleFromString("131O20", height: 4, width: 4) == nil)
    }

    // Section "batched_mask_to_box, box_xyxy_to_xywh": inclusive far edges, so width 0.
    @Test func onePixelMaskHasAZeroSizeBox() {
        var mask = BinaryMask(height: 4, width: 5)
        mask.pixels[2 * 5 + 3] = 1
        #expect(mask.box == [3, 2, 3, 2])
        #expect(mask.bboxXYWH == [3, 2, 0, 0])
        #expect(drawn([".##.", "#..#", "##.#"]).box == [0, 0, 3, 2])
    }

    // Section "uncrop_masks".
    @Test func uncropPadsTheCropIntoTheImage() {
        let crop = drawn(["#.#", ".##"])
        let full = uncropMask(crop, cropBox: [2, 1, 5, 3], origHeight: 4, origWidth: 6)
        #expect(rows(full) == ["......", "..#.#.", "...##.", "......"])
        #expect(uncropMask(crop, cropBox: [0, 0, 3, 2], origHeight: 2, origWidth: 3) == crop)
    }

    // Binarizing uses `logits > threshold`, so a logit exactly at 0 is not set.
    @Test func logitsThresholdStrictly() {
        let logits: [Float] = [0, 0.1, -0.1, 2]
        let mask = logits.withUnsafeBufferPointer { BinaryMask(logits: $0, height: 2, width: 2) }
        #expect(mask.pixels == [0, 1, 0, 1])
    }

    // MARK: NMS (section "batched_nms (torchvision)")

    // IoU 1.0 is not > 1.0: the AMG fixture runs with threshold 1.0 and keeps identical boxes.
    @Test func identicalBoxesSurviveAtThresholdOne() {
        let boxes: [[Float]] = Array(repeating: [0, 0, 10, 10], count: 3)
        #expect(batchedNMS(boxes: boxes, scores: [0.5, 0.9, 0.7], categories: [0, 0, 0], iouThreshold: 1.0) == [1, 2, 0])
        #expect(batchedNMS(boxes: boxes, scores: [0.5, 0.9, 0.7], categories: [0, 0, 0], iouThreshold: 0.99) == [1])
    }

    // [0,0,10,10] and [0,0,10,5]: IoU 50 / (100 + 50 - 50) = 0.5 exactly, kept at 0.5.
    // [0,0,10,1] and [0,0,7,1]: float32(7 / 10) = 0.69999999 is not > 0.7 in double.
    @Test func iouAtTheThresholdIsKept() {
        let half: [[Float]] = [[0, 0, 10, 10], [0, 0, 10, 5]]
        #expect(batchedNMS(boxes: half, scores: [0.9, 0.8], categories: [0, 0], iouThreshold: 0.5) == [0, 1])
        #expect(batchedNMS(boxes: half, scores: [0.9, 0.8], categories: [0, 0], iouThreshold: 0.4999) == [0])
        let seven: [[Float]] = [[0, 0, 10, 1], [0, 0, 7, 1]]
        #expect(batchedNMS(boxes: seven, scores: [0.9, 0.8], categories: [0, 0], iouThreshold: 0.7) == [0, 1])
        #expect(batchedNMS(boxes: seven, scores: [0.9, 0.8], categories: [0, 0], iouThreshold: 0.69999) == [0])
    }

    @Test func categoriesDoNotSuppressEachOther() {
        let boxes: [[Float]] = Array(repeating: [0, 0, 10, 10], count: 3)
        #expect(batchedNMS(boxes: boxes, scores: [0.5, 0.9, 0.7], categories: [0, 1, 0], iouThreshold: 0.5) == [1, 2])
    }

    // Equal scores keep index order (the AMG's crop NMS scores every mask of a crop alike).
    @Test func equalScoresKeepIndexOrder() {
        let apart: [[Float]] = (0..<6).map { i in [Float(20 * i), 0, Float(20 * i + 10), 10] }
        #expect(batchedNMS(boxes: apart, scores: [0.5, 0.5, 0.9, 0.5, 0.9, 0.1], categories: [0, 0, 0, 0, 0, 0],
                           iouThreshold: 0.5) == [2, 4, 0, 1, 3, 5])
    }

    @Test func mixedCaseMatchesTorchvision() {
        let boxes: [[Float]] = [[0, 0, 10, 10], [1, 1, 11, 11], [2, 0, 12, 10], [30, 30, 40, 40], [31, 29, 41, 39],
                                [0, 0, 5, 5], [100, 100, 120, 130], [105, 100, 125, 130], [0, 0, 10, 10],
                                [3, 3, 8, 8], [32, 32, 38, 38], [101, 99, 119, 131]]
        let scores: [Float] = [0.9, 0.85, 0.6, 0.7, 0.7, 0.3, 0.95, 0.5, 0.9, 0.2, 0.65, 0.95]
        let categories = [0, 0, 1, 0, 0, 1, 2, 2, 1, 0, 0, 2]
        #expect(batchedNMS(boxes: boxes, scores: scores, categories: categories, iouThreshold: 0.5) == [6, 0, 8, 3, 10, 5, 9])
        #expect(batchedNMS(boxes: boxes, scores: scores, categories: categories, iouThreshold: 0.3) == [6, 0, 8, 3, 5, 9])
        #expect(batchedNMS(boxes: boxes, scores: scores, categories: Array(repeating: 0, count: 12),
                           iouThreshold: 0.5) == [6, 0, 3, 10, 5, 9])
    }

    // torch sorts NaN above every number: a NaN-scored box is kept first and nothing traps.
    @Test func nanScoresRankFirst() {
        let scores: [Float] = [0.5, .nan, 0.9, .nan, 0.1]
        let same: [[Float]] = Array(repeating: [0, 0, 10, 10], count: 5)
        #expect(batchedNMS(boxes: same, scores: scores, categories: [0, 0, 0, 0, 0], iouThreshold: 0.5) == [1])
        let apart: [[Float]] = (0..<5).map { i in [Float(20 * i), 0, Float(20 * i + 10), 10] }
        #expect(batchedNMS(boxes: apart, scores: scores, categories: [0, 0, 0, 0, 0], iouThreshold: 0.5) == [1, 3, 2, 0, 4])
        #expect(batchedNMS(boxes: [], scores: [], categories: [], iouThreshold: 0.5) == [])
    }

    // MARK: Crops and points

    // Section "generate_crop_boxes": crops listed column by column.
    @Test func cropBoxesMatchTheReference() {
        let one = generateCropBoxes(imageHeight: 322, imageWidth: 480, layers: 1, overlapRatio: 512.0 / 1500)
        #expect(one.boxes == [[0, 0, 480, 322], [0, 0, 295, 216], [0, 107, 295, 322], [186, 0, 480, 216], [186, 107, 480, 322]])
        #expect(one.layerIndices == [0, 1, 1, 1, 1])
        let square = generateCropBoxes(imageHeight: 400, imageWidth: 400, layers: 1, overlapRatio: 0.3413333333333333)
        #expect(square.boxes == [[0, 0, 400, 400], [0, 0, 268, 268], [0, 132, 268, 400], [132, 0, 400, 268], [132, 132, 400, 400]])
        let two = generateCropBoxes(imageHeight: 322, imageWidth: 480, layers: 2, overlapRatio: 512.0 / 1500)
        #expect(two.boxes.count == 21)
        #expect(Array(two.boxes[5...]) == [
            [0, 0, 161, 121], [0, 67, 161, 188], [0, 134, 161, 255], [0, 201, 161, 322],
            [107, 0, 268, 121], [107, 67, 268, 188], [107, 134, 268, 255], [107, 201, 268, 322],
            [214, 0, 375, 121], [214, 67, 375, 188], [214, 134, 375, 255], [214, 201, 375, 322],
            [321, 0, 480, 121], [321, 67, 480, 188], [321, 134, 480, 255], [321, 201, 480, 322],
        ])
        #expect(two.layerIndices == [0, 1, 1, 1, 1] + Array(repeating: 2, count: 16))
    }

    // Section "build_all_layer_point_grids(8, 1, 2) and build_point_grid(12)": the grid is the
    // side tiled, x fastest; values compared bit for bit.
    @Test func pointGridsMatchNumpy() {
        let grids = buildAllLayerPointGrids(pointsPerSide: 8, layers: 1, scalePerLayer: 2)
        let sides: [[Double]] = [[0.0625, 0.1875, 0.3125, 0.4375, 0.5625, 0.6875, 0.8125, 0.9375],
                                 [0.125, 0.375, 0.625, 0.875]]
        #expect(grids.count == 2)
        for (grid, side) in zip(grids, sides) {
            #expect(grid.count == side.count * side.count)
            #expect(grid == (0..<grid.count).map { SIMD2(side[$0 % side.count], side[$0 / side.count]) })
        }
        // Index 9 differs in the last bit with `start + i * (stop - start) / (n - 1)`.
        let side12 = [0.041666666666666664, 0.125, 0.20833333333333334, 0.2916666666666667, 0.37500000000000006,
                      0.4583333333333334, 0.5416666666666666, 0.625, 0.7083333333333334, 0.7916666666666667,
                      0.8750000000000001, 0.9583333333333334]
        let grid12 = buildPointGrid(pointsPerSide: 12)
        #expect(grid12 == (0..<144).map { SIMD2(side12[$0 % 12], side12[$0 / 12]) })
        #expect(buildPointGrid(pointsPerSide: 1) == [SIMD2(0.5, 0.5)])
    }

    // Section "is_box_near_crop_edge": |a - b| <= 20 against inner crop edges only.
    @Test func boxesNearInnerCropEdgesAreFlagged() {
        let orig = [0, 0, 480, 322]
        let topLeft = [0, 0, 240, 161]
        let expected1: [([Int], Bool)] = [([10, 10, 220, 140], true), ([10, 10, 221, 140], true),
                                          ([10, 10, 219, 141], true), ([0, 0, 100, 100], false),
                                          ([10, 10, 200, 142], true)]
        for (box, near) in expected1 {
            #expect(isBoxNearCropEdge(box, cropBox: topLeft, origBox: orig) == near, "box \(box)")
        }
        let topRight = [208, 0, 480, 161]
        let expected2: [([Int], Bool)] = [([19, 0, 271, 100], true), ([20, 0, 271, 100], true),
                                          ([21, 5, 271, 140], false), ([21, 5, 250, 141], true)]
        for (box, near) in expected2 {
            #expect(isBoxNearCropEdge(box, cropBox: topRight, origBox: orig) == near, "box \(box)")
        }
        #expect(!isBoxNearCropEdge([0, 0, 479, 321], cropBox: orig, origBox: orig))
        #expect(!isBoxNearCropEdge([5, 5, 20, 20], cropBox: orig, origBox: orig))
    }

    @Test func uncropMovesBoxesAndPoints() {
        #expect(uncropBoxXYXY([1, 2, 3, 4], cropBox: [10, 20, 50, 60]) == [11, 22, 13, 24])
        #expect(uncropPoints([SIMD2(0.5, 1.25)], cropBox: [10, 20, 50, 60]) == [SIMD2(10.5, 21.25)])
    }

    // MARK: Stability score

    // Logits > 1: 2, 1.5, 3, 1.01 (4); logits > -1: those and 1, 0.5, -0.5, 0.99, -0.99 (9);
    // float32(4) / float32(9), which section "calculate_stability_score" prints as 0.4444444477558136.
    @Test func stabilityScoreCountsBothThresholds() {
        let logits: [Float] = [2, 1, 0.5, -2, 1.5, -0.5, -1, 0.99, 3, 1.01, -0.99, -1.01]
        let score = calculateStabilityScore(logits: logits, height: 3, width: 4, maskThreshold: 0, thresholdOffset: 1)
        #expect(score == Float(4) / Float(9))
        #expect(Double(score) == 0.4444444477558136)
        let none = calculateStabilityScore(logits: [-5, -5, -5, -5], height: 2, width: 2, maskThreshold: 0,
                                           thresholdOffset: 1)
        #expect(none.isNaN)
        #expect(!(none >= 0.05))  // the AMG's `>=` filter drops it
    }

    // MARK: Small regions (masks derived by hand; section "cv2.connectedComponentsWithStats ..."
    // prints the same with OpenCV present)

    @Test func smallHoleIsFilled() {
        let mask = drawn(["......", ".###..", ".#.#..", ".###..", "......", "......"])
        let (out, changed) = removeSmallRegions(mask, areaThreshold: 2, mode: .holes)
        #expect(rows(out) == ["......", ".###..", ".###..", ".###..", "......", "......"])
        #expect(changed)
    }

    // The "hole" touches the outside diagonally, and components are 8-connected: not a hole.
    @Test func diagonalGapOpensAHole() {
        let mask = drawn([".....", ".##..", ".#.#.", "..##.", "....."])
        let (out, changed) = removeSmallRegions(mask, areaThreshold: 2, mode: .holes)
        #expect(out == mask)
        #expect(!changed)
    }

    // The background is a component of the inverted mask too: smaller than the area, it is filled.
    @Test func smallBackgroundIsFilledLikeAHole() {
        let (out, changed) = removeSmallRegions(drawn([".##", "###", "###"]), areaThreshold: 2, mode: .holes)
        #expect(rows(out) == ["###", "###", "###"])
        #expect(changed)
    }

    @Test func smallIslandIsRemoved() {
        let mask = drawn(["###...", "###...", "......", ".....#"])
        let (out, changed) = removeSmallRegions(mask, areaThreshold: 2, mode: .islands)
        #expect(rows(out) == ["###...", "###...", "......", "......"])
        #expect(changed)
    }

    // Islands of 2 and 3 pixels under an area of 5: the largest is kept.
    @Test func allSmallIslandsKeepTheLargest() {
        let (out, changed) = removeSmallRegions(drawn(["##....", "......", "...###"]), areaThreshold: 5, mode: .islands)
        #expect(rows(out) == ["......", "......", "...###"])
        #expect(changed)
    }

    // Two islands of 2: OpenCV numbers the one in the first 2x2 block first (rows 0-1, columns
    // 0-1 holds (1, 0)), although the other starts earlier in raster order at (0, 2);
    // np.argmax keeps label 1. cv2 gives labels [[0,0,2,2],[1,0,0,0],[1,0,0,0]].
    @Test func equalIslandsKeepOpenCVsFirstLabel() {
        let mask = drawn(["..##", "#...", "#..."])
        let components = connectedComponents8(mask)
        #expect(components.labels == [0, 0, 2, 2, 1, 0, 0, 0, 1, 0, 0, 0])
        #expect(components.sizes == [8, 2, 2])
        let (out, changed) = removeSmallRegions(mask, areaThreshold: 5, mode: .islands)
        #expect(rows(out) == ["....", "#...", "#..."])
        #expect(changed)
    }

    // Diagonal neighbours join: one island of 2, not two of 1.
    @Test func diagonalPixelsAreOneIsland() {
        let mask = drawn(["#.", ".#"])
        #expect(connectedComponents8(mask).sizes == [2, 2])
        let (out, changed) = removeSmallRegions(mask, areaThreshold: 2, mode: .islands)
        #expect(out == mask)
        #expect(!changed)
    }

    // `changed` follows the reference: a lone small island comes back as it was, flagged.
    @Test func changedFlagFollowsTheReference() {
        let lone = drawn(["....", ".##.", "...."])
        let (same, flagged) = removeSmallRegions(lone, areaThreshold: 5, mode: .islands)
        #expect(same == lone)
        #expect(flagged)
        let big = drawn(["##..", "##..", "...."])
        let (unchanged, notFlagged) = removeSmallRegions(big, areaThreshold: 4, mode: .islands)
        #expect(unchanged == big)
        #expect(!notFlagged)
        let empty = BinaryMask(height: 3, width: 3)
        #expect(removeSmallRegions(empty, areaThreshold: 5, mode: .islands).changed == false)
        // Holes of an empty mask: the whole image is one background "hole" of 9 >= 5.
        #expect(removeSmallRegions(empty, areaThreshold: 5, mode: .holes).changed == false)
    }

    // A snake that turns back on itself joins provisional labels late (union-find merges) and a
    // comb whose teeth meet only in the last row; both must be one component.
    @Test func lateMergesFormOneComponent() {
        let comb = drawn(["#.#.#.#", "#.#.#.#", "#.#.#.#", "#######"])
        #expect(connectedComponents8(comb).sizes == [9, 19])
        let vee = drawn(["#...#", ".#.#.", "..#.."])
        #expect(connectedComponents8(vee).sizes == [10, 5])
    }
}
