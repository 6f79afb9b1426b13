// swift-tools-version: 6.0
import PackageDescription

// Layers follow ../shared/DESIGN.md: C shims at the bottom, then media and tensors, then the
// models, the pipeline, and the command line. A lower target never imports a higher one.
let package = Package(
    name: "segwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "segwatch", targets: ["segwatch"]),
        .executable(name: "segwatch-gpu-bench", targets: ["segwatch-gpu-bench"]),
        .library(name: "SegwatchMedia", targets: ["SegwatchMedia"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // System-library shims. pkg-config finds flags; the Debian -dev packages provide them.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavdevice",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev",
                              "libswscale-dev", "libavdevice-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CVulkan",
            pkgConfig: "vulkan",
            providers: [.apt(["libvulkan-dev"])]
        ),

        // zlib, to read OpenAI's gzipped BPE vocabulary.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // glibc's malloc.h: the allocator tuning of a long run (`mallopt`).
        .systemLibrary(name: "CMalloc"),
        // FreeType, to draw labels on overlays with a real font (fonts-dejavu-core by default).
        .systemLibrary(
            name: "CFreeType",
            pkgConfig: "freetype2",
            providers: [.apt(["libfreetype-dev"])]
        ),
        // CPUID, for choosing the kernel build at run time.
        .target(name: "CCPUID"),
        // The AVX2 and AVX-512 products with pre-packed weights (`linear`) and attention heads,
        // chosen at run time like the kernels.
        .target(name: "CGemm"),

        .target(name: "SegwatchMedia", dependencies: ["CFFmpeg"]),
        // The CPU kernels, built three times from the same files (SegwatchKernelsAVX2 and
        // SegwatchKernelsAVX512 hold symlinks): for any x86-64, for x86-64-v3 (AVX2, FMA; spelled
        // "haswell", the name this toolchain's target-cpu knows) and for x86-64-v4 (AVX-512;
        // "skylake-avx512": this toolchain does not accept "x86-64-v4"). SegwatchTensor calls
        // one at run time (CCPUID).
        .target(name: "SegwatchKernels"),
        .target(name: "SegwatchKernelsAVX2",
                swiftSettings: [.define("SEGWATCH_AVX2"), .unsafeFlags(["-target-cpu", "haswell"])]),
        .target(name: "SegwatchKernelsAVX512", dependencies: ["CGemm"],
                swiftSettings: [.define("SEGWATCH_AVX2"), .define("SEGWATCH_AVX512"),
                                .unsafeFlags(["-target-cpu", "skylake-avx512"])]),
        .target(name: "SegwatchTensor", dependencies: ["COpenBLAS", "CCPUID", "CGemm", "SegwatchKernels", "SegwatchKernelsAVX2",
                                                       "SegwatchKernelsAVX512"]),
        .target(name: "SegwatchCheckpoint", dependencies: ["SegwatchTensor"]),
        // The Vulkan backend's compute shaders, SPIR-V compiled from glsl/ by make_shaders.py and
        // committed (shaders.c), so that building segwatch needs no shader compiler.
        .target(name: "CVulkanShaders", exclude: ["glsl", "make_shaders.py"]),
        // The Vulkan compute backend: devices, buffers, pipelines, the `Backend` ops as shaders.
        .target(name: "SegwatchVulkan", dependencies: ["SegwatchTensor", "CVulkan", "CVulkanShaders"]),
        // The backend chosen at run time (--backend, SEGWATCH_BACKEND): CPU or Vulkan behind one type.
        .target(name: "SegwatchBackends", dependencies: ["SegwatchTensor", "SegwatchVulkan"]),
        // The weight reader and torch.nn layers shared by the models.
        .target(name: "SegwatchNN", dependencies: ["SegwatchTensor", "SegwatchCheckpoint"]),
        .target(name: "SegwatchSAM", dependencies: ["SegwatchTensor", "SegwatchCheckpoint", "SegwatchNN"]),
        // OpenAI's BPE vocabulary, for open_clip folders and OpenAI's files, which carry none:
        // built into the binary (not a resource bundle, which stays in the build folder).
        .target(name: "CBPEVocabulary", exclude: ["bpe_vocabulary.c.gz"]),
        // CLIP and its tokenizer.
        .target(name: "SegwatchCLIP", dependencies: ["SegwatchTensor", "SegwatchCheckpoint", "SegwatchNN", "CZlib", "CBPEVocabulary"],
                exclude: ["Tokenizer/make_html_entities.py", "Tokenizer/make_ftfy_tables.py", "Tokenizer/make_unicode_tables.py"]),

        // DINOv2 (transformers' Dinov2Model and Dinov2WithRegistersModel), for the USE head.
        .target(name: "SegwatchDINOv2", dependencies: ["SegwatchTensor", "SegwatchCheckpoint", "SegwatchNN"]),

        // The USE segment-embedding head: its forward pass, loss and gradients, AdamW, head files.
        .target(name: "SegwatchUSE", dependencies: ["SegwatchTensor", "SegwatchCheckpoint"]),

        .target(name: "SegwatchPipeline", dependencies: ["SegwatchTensor", "SegwatchCheckpoint", "SegwatchNN", "SegwatchSAM", "SegwatchCLIP",
                                                         "SegwatchDINOv2", "SegwatchUSE", "CFreeType"]),
        // The segment store: tracks, their embeddings and labels, searchable by text; SQLite
        // through GRDB (Debian's libsqlite3-dev), PostgreSQL through postgres-nio.
        // The first pass of a track search: int8 codes against a query (AVX2 / AVX-512BW).
        .target(name: "CCodeScan"),
        .target(name: "SegwatchStore", dependencies: ["CCodeScan", "SegwatchTensor", .product(name: "GRDB", package: "GRDB.swift"),
                                                    .product(name: "PostgresNIO", package: "postgres-nio"),
                                                    .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                    .product(name: "Logging", package: "swift-log")]),

        // Running streams: the stream runner, event records and sinks (files, socket, video),
        // and, as the daemon grows, the engine shared by many cameras, config and the HTTP API.
        .target(name: "SegwatchService", dependencies: [
            "CMalloc", "SegwatchMedia", "SegwatchTensor", "SegwatchCheckpoint", "SegwatchSAM", "SegwatchCLIP", "SegwatchDINOv2", "SegwatchUSE",
            "SegwatchPipeline", "SegwatchStore", "SegwatchBackends",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // Random weights in the published layouts (MobileSAM, open_clip, DINOv2), for benchmarks
        // that have no weights at hand.
        .target(name: "SegwatchSynthetic", dependencies: ["SegwatchTensor", "SegwatchCheckpoint"]),

        .executableTarget(
            name: "segwatch",
            dependencies: [
                "CMalloc",
                "SegwatchMedia",
                "SegwatchTensor",
                "SegwatchCheckpoint",
                "SegwatchSAM",
                "SegwatchNN",
                "SegwatchCLIP",
                "SegwatchDINOv2",
                "SegwatchUSE",
                "SegwatchPipeline",
                "SegwatchService",
                "SegwatchStore",
                "SegwatchBackends",
                "SegwatchVulkan",
                "SegwatchSynthetic",
                "COpenBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The Vulkan backend's figures on a bare GPU machine (scripts/gpu-bench): no FFmpeg, no
        // weights; the script links the Swift runtime and OpenBLAS into it.
        .executableTarget(
            name: "segwatch-gpu-bench",
            dependencies: ["SegwatchBackends", "SegwatchCLIP", "SegwatchNN", "SegwatchSAM", "SegwatchSynthetic", "SegwatchTensor",
                           "SegwatchVulkan"]
        ),

        // Fixture paths, child processes and the loopback RTSP server, shared by the tests.
        .target(name: "SegwatchTestSupport", dependencies: ["SegwatchCheckpoint"], path: "Tests/SegwatchTestSupport",
                exclude: ["range_http_server.py"]),
        .testTarget(name: "SegwatchMediaTests", dependencies: ["SegwatchMedia", "SegwatchTestSupport"]),
        .testTarget(name: "CShimTests", dependencies: ["COpenBLAS", "CVulkan"]),
        .testTarget(name: "SegwatchVulkanTests", dependencies: ["SegwatchVulkan", "SegwatchTensor", "SegwatchSAM", "SegwatchCLIP", "SegwatchPipeline",
                                                              "SegwatchSynthetic", "SegwatchTestSupport"]),
        .testTarget(name: "SegwatchCheckpointTests", dependencies: ["SegwatchCheckpoint", "SegwatchTestSupport"],
                    exclude: ["reference_digest.py", "checkpoint_digests.json", "TorchScript"]),
        .testTarget(name: "SegwatchKernelsTests", dependencies: ["SegwatchKernels", "SegwatchKernelsAVX2", "SegwatchKernelsAVX512",
                                                                 "SegwatchTensor"]),
        .testTarget(name: "SegwatchTensorTests", dependencies: ["SegwatchTensor", "SegwatchCheckpoint", "SegwatchTestSupport"],
                    exclude: ["make_op_references.py", "op_references.safetensors"]),
        .testTarget(name: "SegwatchSAMTests", dependencies: ["SegwatchSAM", "SegwatchTestSupport"],
                    exclude: ["make_amg_references.py"]),
        .testTarget(name: "SegwatchCLIPTests", dependencies: ["SegwatchCLIP", "SegwatchTestSupport"],
                    exclude: ["make_hidden_state_references.py", "hidden_states.safetensors", "hidden_states.json"]),
        .testTarget(name: "SegwatchUSETests", dependencies: ["SegwatchUSE", "SegwatchTensor", "SegwatchCheckpoint", "SegwatchTestSupport"],
                    exclude: ["make_use_head_references.py", "bench_head_training.py", "small_head"]),
        .testTarget(name: "SegwatchDINOv2Tests", dependencies: ["SegwatchDINOv2", "SegwatchNN", "SegwatchTensor", "SegwatchCheckpoint",
                                                               "SegwatchMedia", "SegwatchTestSupport"],
                    exclude: ["make_dinov2_references.py", "registers_swiglu"]),
        .testTarget(name: "SegwatchPipelineTests", dependencies: ["SegwatchPipeline", "SegwatchCheckpoint", "SegwatchSAM", "SegwatchCLIP", "SegwatchMedia",
                                                             "SegwatchDINOv2", "SegwatchUSE",
                                                             "SegwatchTestSupport"],
                    exclude: ["make_pipeline_references.py", "pipeline_references.safetensors"]),
        .testTarget(name: "SegwatchSyntheticTests", dependencies: ["SegwatchSynthetic", "SegwatchSAM", "SegwatchCLIP", "SegwatchDINOv2",
                                                                   "SegwatchCheckpoint", "SegwatchTestSupport"]),
        .testTarget(name: "SegwatchStoreTests", dependencies: ["SegwatchStore", "SegwatchTestSupport"]),
        .testTarget(name: "SegwatchServiceTests", dependencies: ["SegwatchService", "SegwatchPipeline", "SegwatchTestSupport"]),
        // Runs the built `segwatch` binary, as a user would.
        // Members of modules it does not import (TOMLKit's literal conformances, through the
        // service target) stay out of its type checking.
        .testTarget(name: "segwatchTests", dependencies: ["segwatch", "SegwatchCheckpoint", "SegwatchMedia", "SegwatchSAM", "SegwatchTensor", "SegwatchTestSupport",
                                                       .product(name: "ArgumentParser", package: "swift-argument-parser")],
                    exclude: ["TrainEndToEnd"],
                    swiftSettings: [.enableUpcomingFeature("MemberImportVisibility")]),
    ],
    swiftLanguageModes: [.v6]
)
