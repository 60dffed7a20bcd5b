// Streaming video timing on the phone: a chunk pipeline of Core ML packages (a chunk denoiser `calls` times and a
// decoder once per chunk; a text encoder once per stream) run for a stated duration, every chunk's arrival timed.
// Request `evalsuite.ios-stream-request/1` in (launch argument `--stream-request <path>`), result
// `evalsuite.ios-stream-result/1` out; fields in ../PROTOCOL.md ("Streaming"), the host side is
// device_runner/protocol.py (make_stream_request, parse_stream_result) and device_runner/backends/iphone_stream.py.
//
// The definitions are device_runner/streaming.py's `stream_stats`, computed here the same way (StreamStats); the
// host recomputes them from `chunk_arrivals_ms` and refuses a result whose summary disagrees:
//   a_k = arrival of chunk k in ms since the measured stream started (t0: just before its per-stream stages);
//   TTFF = a_0; chunk latency l_k = a_k - a_(k-1), a_(-1) = 0; p50/p90/p99 (linear interpolation, as numpy) and
//   jitter = p99 - p50 over l_1 ... l_(N-1) (l_0 alone when N = 1); sustained FPS = C (N-1) 1000 / (a_(N-1) - a_0)
//   (C 1000 / a_0 when N = 1); playback starts at a_0 at target_fps, P = 1000 C / fps per chunk; chunk k >= 1 is due
//   at d_k = s_(k-1) + P (s_0 = a_0); it misses when a_k > d_k + 1 ns, and playback stalls until it arrives (s_k = a_k,
//   stall += a_k - d_k), else s_k = d_k; miss rate = misses / (N - 1) (0 when N = 1).
// The run: `warmup_chunks` chunks of an untimed stream (its per-stream stages first), then the measured stream
// until a chunk arrives at or after duration_s (at least two chunks) or max_chunks chunks (0: no count limit);
// never more than maxStreamChunks. Every time comes from mach_absolute_time (Clock).

import CoreML
import Foundation

let streamRequestSchema = "evalsuite.ios-stream-request/1"
let streamResultSchema = "evalsuite.ios-stream-result/1"
let maxStreamChunks = 20_000  // as device_runner/streaming.py's MAX_CHUNKS

// MARK: - Request

struct StreamStage: Decodable, Sendable {
    let name: String
    let package: String  // file in Documents: <request_id>.<name>.mlpackage.zip, or an X.mlpackage folder
    let calls: Int       // predictions per chunk (per: chunk) or per stream (per: stream)
    let per: String      // chunk | stream
    let inputs: [InputSpec]

    enum CodingKeys: String, CodingKey { case name, package, calls, per, inputs }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        package = try c.decode(String.self, forKey: .package)
        calls = try c.decodeIfPresent(Int.self, forKey: .calls) ?? 1
        per = try c.decodeIfPresent(String.self, forKey: .per) ?? "chunk"
        inputs = try c.decodeIfPresent([InputSpec].self, forKey: .inputs) ?? []
    }
}

struct StreamRequest: Decodable, Sendable {
    let schema: String
    let requestId: String
    let resultFile: String
    let logFile: String
    let computeUnit: String
    let chunkFrames: Int
    let targetFps: Double
    let durationS: Double
    let maxChunks: Int
    let warmupChunks: Int
    let stages: [StreamStage]
    let meta: [String: String]

    enum CodingKeys: String, CodingKey {
        case schema, stages, meta
        case requestId = "request_id"
        case resultFile = "result_file"
        case logFile = "log_file"
        case computeUnit = "compute_unit"
        case chunkFrames = "chunk_frames"
        case targetFps = "target_fps"
        case durationS = "duration_s"
        case maxChunks = "max_chunks"
        case warmupChunks = "warmup_chunks"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(String.self, forKey: .schema)
        requestId = try c.decode(String.self, forKey: .requestId)
        resultFile = try c.decode(String.self, forKey: .resultFile)
        logFile = try c.decodeIfPresent(String.self, forKey: .logFile) ?? "\(requestId).log"
        computeUnit = try c.decodeIfPresent(String.self, forKey: .computeUnit) ?? "ALL"
        chunkFrames = try c.decode(Int.self, forKey: .chunkFrames)
        targetFps = try c.decode(Double.self, forKey: .targetFps)
        durationS = try c.decode(Double.self, forKey: .durationS)
        maxChunks = try c.decodeIfPresent(Int.self, forKey: .maxChunks) ?? 0
        warmupChunks = try c.decodeIfPresent(Int.self, forKey: .warmupChunks) ?? 0
        stages = try c.decode([StreamStage].self, forKey: .stages)
        meta = try c.decodeIfPresent([String: String].self, forKey: .meta) ?? [:]
    }

    static func load(from url: URL) throws -> StreamRequest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BenchError.badRequest("cannot read the stream request \(url.lastPathComponent): \(describe(error))")
        }
        let probe = try? JSONDecoder().decode(RequestProbe.self, from: data)
        guard let schema = probe?.schema else {
            throw BenchError.badRequest("the request \(url.lastPathComponent) is not JSON with a schema field")
        }
        guard schema == streamRequestSchema else {
            throw BenchError.badRequest("the stream request uses schema \(schema); this app reads " +
                                        "\(streamRequestSchema) (rebuild the app from the evalsuite checkout)")
        }
        let request: StreamRequest
        do {
            request = try JSONDecoder().decode(StreamRequest.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw BenchError.badRequest("the stream request lacks the field \(key.stringValue)")
        } catch {
            throw BenchError.badRequest("the stream request cannot be read: \(describe(error))")
        }
        try request.validate()
        return request
    }

    func validate() throws {
        guard chunkFrames >= 1 else { throw BenchError.badRequest("chunk_frames must be >= 1") }
        guard targetFps > 0, targetFps.isFinite else { throw BenchError.badRequest("target_fps must be > 0") }
        guard durationS >= 0, maxChunks >= 0, durationS > 0 || maxChunks > 0 else {
            throw BenchError.badRequest("neither duration_s nor max_chunks bounds the stream")
        }
        guard warmupChunks >= 0 else { throw BenchError.badRequest("warmup_chunks must be >= 0") }
        guard computeUnitNames.contains(computeUnit) else {
            throw BenchError.badRequest("unknown compute unit \(computeUnit)")
        }
        guard stages.contains(where: { $0.per == "chunk" }) else {
            throw BenchError.badRequest("no stage runs per chunk")
        }
        for stage in stages {
            guard stage.calls >= 1, stage.per == "chunk" || stage.per == "stream" else {
                throw BenchError.badRequest("stage \(stage.name): calls >= 1 and per chunk or stream")
            }
        }
        for name in [resultFile, logFile] + stages.map({ $0.package }) where name.contains("/") || name.isEmpty {
            throw BenchError.badRequest("\(name) is not a plain file name in Documents")
        }
    }
}

// MARK: - The definitions (device_runner/streaming.py stream_stats)

/// numpy.percentile's default (linear): the value at position (n - 1) q of the sorted values.
func percentileLinear(_ sorted: [Double], _ q: Double) -> Double {
    let h = Double(sorted.count - 1) * q
    let lo = Int(h.rounded(.down))
    let hi = min(lo + 1, sorted.count - 1)
    return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
}

struct StreamStats: Encodable {
    let ttffMs: Double
    let sustainedFps: Double
    let p50Ms: Double
    let p90Ms: Double
    let p99Ms: Double
    let jitterMs: Double
    let deadlineMisses: Int
    let deadlineMissRate: Double
    let stallMs: Double

    enum CodingKeys: String, CodingKey {
        case ttffMs = "ttff_ms"
        case sustainedFps = "sustained_fps"
        case p50Ms = "p50_ms"
        case p90Ms = "p90_ms"
        case p99Ms = "p99_ms"
        case jitterMs = "jitter_ms"
        case deadlineMisses = "deadline_misses"
        case deadlineMissRate = "deadline_miss_rate"
        case stallMs = "stall_ms"
    }

    /// `a`: chunk arrivals in ms since the stream's start (non-empty, increasing).
    init(arrivalsMs a: [Double], chunkFrames: Int, targetFps: Double) {
        let n = a.count
        var latencies: [Double] = []
        for k in 0..<n { latencies.append(a[k] - (k == 0 ? 0 : a[k - 1])) }
        let steady = (n > 1 ? Array(latencies.dropFirst()) : latencies).sorted()
        ttffMs = a[0]
        p50Ms = percentileLinear(steady, 0.50)
        p90Ms = percentileLinear(steady, 0.90)
        p99Ms = percentileLinear(steady, 0.99)
        jitterMs = p99Ms - p50Ms
        let c = Double(chunkFrames)
        sustainedFps = n > 1 ? c * Double(n - 1) * 1000 / (a[n - 1] - a[0]) : c * 1000 / a[0]
        let playMs = 1000 * c / targetFps
        var start = a[0]
        var misses = 0
        var stall = 0.0
        if n > 1 {
            for k in 1..<n {
                let due = start + playMs
                if a[k] > due + 1e-6 {  // within 1 ns is on time, as streaming.py's TIE_MS
                    misses += 1
                    stall += a[k] - due
                    start = a[k]
                } else {
                    start = due
                }
            }
        }
        deadlineMisses = misses
        deadlineMissRate = n > 1 ? Double(misses) / Double(n - 1) : 0
        stallMs = stall
    }
}

// MARK: - Result

struct StreamStageResult: Encodable {
    let name: String
    let calls: Int
    let per: String
    let compileMs: Double
    let loadMs: Double
    let firstPredictMs: Double

    enum CodingKeys: String, CodingKey {
        case name, calls, per
        case compileMs = "compile_ms"
        case loadMs = "load_ms"
        case firstPredictMs = "first_predict_ms"
    }
}

struct StreamResult: Encodable {
    var requestId: String
    var status: String  // ok | error
    var error: String?
    var device: DeviceInfo
    var thermalState: String  // the worst seen during the run
    var thermalStart: String
    var request: StreamRequest?
    var arrivalsMs: [Double]
    var stages: [StreamStageResult]
    var summary: StreamStats?
    var timestamp: String = ISO8601DateFormatter().string(from: Date())

    enum CodingKeys: String, CodingKey {
        case schema, status, error, meta, timestamp, stages, summary
        case requestId = "request_id"
        case deviceModel = "device_model"
        case osVersion = "os_version"
        case appVersion = "app_version"
        case thermalState = "thermal_state"
        case thermalStart = "thermal_start"
        case computeUnit = "compute_unit"
        case chunkFrames = "chunk_frames"
        case targetFps = "target_fps"
        case durationS = "duration_s"
        case warmupChunks = "warmup_chunks"
        case arrivalsMs = "chunk_arrivals_ms"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(streamResultSchema, forKey: .schema)
        try c.encode(requestId, forKey: .requestId)
        try c.encode(status, forKey: .status)
        try c.encode(error, forKey: .error)  // null when ok
        try c.encode(device.machine, forKey: .deviceModel)
        try c.encode(device.osVersion, forKey: .osVersion)
        try c.encode(device.appVersion, forKey: .appVersion)
        try c.encode(thermalState, forKey: .thermalState)
        try c.encode(thermalStart, forKey: .thermalStart)
        try c.encode(request?.meta ?? [:], forKey: .meta)
        try c.encode(request?.computeUnit ?? "ALL", forKey: .computeUnit)
        try c.encode(request?.chunkFrames ?? 0, forKey: .chunkFrames)
        try c.encode(request?.targetFps ?? 0, forKey: .targetFps)
        try c.encode(request?.durationS ?? 0, forKey: .durationS)
        try c.encode(request?.warmupChunks ?? 0, forKey: .warmupChunks)
        try c.encode(arrivalsMs, forKey: .arrivalsMs)
        try c.encode(stages, forKey: .stages)
        try c.encode(summary, forKey: .summary)  // null on error
        try c.encode(timestamp, forKey: .timestamp)
    }

    func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}

// MARK: - The measurement

/// The worst thermal state seen since creation (the stream's own, independent of Benchmark.swift's watch).
struct StreamThermal {
    private(set) var worst = ProcessInfo.processInfo.thermalState

    mutating func sample() {
        let now = ProcessInfo.processInfo.thermalState
        if now.rawValue > worst.rawValue { worst = now }
    }

    var name: String { thermalName(worst) }
}

final class StreamBenchmark {
    let request: StreamRequest
    let documents: URL
    let progress: ProgressLog
    private let scratch: URL
    private(set) var thermal = StreamThermal()

    init(request: StreamRequest, documents: URL, progress: ProgressLog) {
        self.request = request
        self.documents = documents
        self.progress = progress
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent(request.requestId, isDirectory: true)
    }

    private struct Loaded {
        let stage: StreamStage
        let model: MLModel
        let inputs: MLFeatureProvider
    }

    /// Arrivals (ms since the measured stream's start) and each stage's compile/load/first-prediction times.
    func run() async throws -> ([Double], [StreamStageResult]) {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let units = try computeUnits(named: request.computeUnit)
        var loaded: [Loaded] = []
        var stageResults: [StreamStageResult] = []
        for stage in request.stages {
            let package = try preparePackage(stage)
            var t0 = Clock.now()
            let compiled = try await MLModel.compileModel(at: package)
            let compileMs = Clock.ms(t0, Clock.now())
            let configuration = MLModelConfiguration()
            configuration.computeUnits = units
            t0 = Clock.now()
            let model = try await MLModel.load(contentsOf: compiled, configuration: configuration)
            let loadMs = Clock.ms(t0, Clock.now())
            let inputs = try makeInputs(for: model, specs: stage.inputs)
            t0 = Clock.now()
            try autoreleasepool { _ = try model.prediction(from: inputs) }
            let firstMs = Clock.ms(t0, Clock.now())
            progress("[\(stage.name)] compiled \(fmt(compileMs)) ms, loaded \(fmt(loadMs)) ms, first prediction " +
                     "\(fmt(firstMs)) ms (\(request.computeUnit))")
            loaded.append(Loaded(stage: stage, model: model, inputs: inputs))
            stageResults.append(StreamStageResult(name: stage.name, calls: stage.calls, per: stage.per,
                                                  compileMs: compileMs, loadMs: loadMs, firstPredictMs: firstMs))
        }
        let perStream = loaded.filter { $0.stage.per == "stream" }
        let perChunk = loaded.filter { $0.stage.per == "chunk" }

        func predict(_ parts: [Loaded]) throws {
            for part in parts {
                for _ in 0..<part.stage.calls {
                    try autoreleasepool { _ = try part.model.prediction(from: part.inputs) }
                }
            }
        }

        if request.warmupChunks > 0 {  // an untimed stream, as the host's warm-up
            try predict(perStream)
            for _ in 0..<request.warmupChunks { try predict(perChunk) }
        }
        thermal.sample()
        progress("streaming \(request.chunkFrames) frames/chunk at \(request.targetFps) fps for " +
                 "\(request.durationS) s (max \(request.maxChunks) chunks)")
        var arrivals: [Double] = []
        arrivals.reserveCapacity(1024)
        let start = Clock.now()
        try predict(perStream)
        while true {
            try predict(perChunk)
            var now = Clock.ms(start, Clock.now())
            if let last = arrivals.last, now <= last { now = last + 1e-6 }  // strictly increasing
            arrivals.append(max(now, 1e-6))
            if arrivals.count % 10 == 0 { thermal.sample() }
            if arrivals.count >= (request.maxChunks > 0 ? request.maxChunks : maxStreamChunks) { break }
            if arrivals.count >= maxStreamChunks { break }
            if request.durationS > 0, arrivals.count >= 2, now >= request.durationS * 1000 { break }
        }
        thermal.sample()
        return (arrivals, stageResults)
    }

    /// The stage's .mlpackage: extracted from its pushed stored zip, or a package folder already in Documents.
    func preparePackage(_ stage: StreamStage) throws -> URL {
        let source = documents.appendingPathComponent(stage.package)
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw BenchError.badRequest("the package \(stage.package) is not in the app's Documents folder")
        }
        guard source.pathExtension.lowercased() == "zip" else { return source }
        let destination = scratch.appendingPathComponent(stage.name, isDirectory: true)
        try? FileManager.default.removeItem(at: destination)
        try extractStoredZip(at: source, to: destination)
        let entries = try FileManager.default.contentsOfDirectory(at: destination, includingPropertiesForKeys: nil)
        guard let package = entries.first(where: { $0.pathExtension == "mlpackage" }) else {
            throw BenchError.badRequest("\(stage.package) holds no .mlpackage folder")
        }
        return package
    }
}

// MARK: - One stream request, start to finish

enum StreamBenchmarkRun {
    /// Runs the stream request and always leaves a result file (ok or error) unless the process dies; a fatal
    /// signal leaves the crash marker (CrashMarker, schema evalsuite.ios-result/1 with `crash`).
    static func execute(requestPath: String, device: DeviceInfo,
                        echo: @escaping @Sendable (String) -> Void) async -> String {
        let documents = BenchmarkRun.documents
        let requestURL = BenchmarkRun.resolve(requestPath)
        var requestId = requestURL.lastPathComponent.replacingOccurrences(of: ".stream-request.json", with: "")
        var resultURL = documents.appendingPathComponent("\(requestId).result.json")
        let startThermal = thermalName(ProcessInfo.processInfo.thermalState)
        var request: StreamRequest?
        do {
            let loaded = try StreamRequest.load(from: requestURL)
            request = loaded
            requestId = loaded.requestId
            resultURL = documents.appendingPathComponent(loaded.resultFile)
            try? FileManager.default.removeItem(at: resultURL)
            let progress = ProgressLog(url: documents.appendingPathComponent(loaded.logFile), echo: echo)
            CrashMarker.arm(resultURL: resultURL, requestId: requestId, device: device, meta: loaded.meta)
            progress("stream request \(requestId) on \(device.machine) iOS \(device.osVersion), thermal \(startThermal)")
            let bench = StreamBenchmark(request: loaded, documents: documents, progress: progress)
            let (arrivals, stages) = try await bench.run()
            CrashMarker.disarm()
            let stats = StreamStats(arrivalsMs: arrivals, chunkFrames: loaded.chunkFrames, targetFps: loaded.targetFps)
            progress("TTFF \(fmt(stats.ttffMs)) ms, sustained \(String(format: "%.2f", stats.sustainedFps)) fps, " +
                     "\(stats.deadlineMisses) deadline misses over \(arrivals.count) chunks, jitter " +
                     "\(fmt(stats.jitterMs)) ms")
            try StreamResult(requestId: requestId, status: "ok", error: nil, device: device,
                             thermalState: bench.thermal.name, thermalStart: startThermal, request: loaded,
                             arrivalsMs: arrivals, stages: stages, summary: stats).write(to: resultURL)
            progress("wrote \(resultURL.lastPathComponent)")
            cleanUp(loaded, documents: documents)
            return "done: \(resultURL.lastPathComponent)"
        } catch {
            CrashMarker.disarm()
            let message = describe(error)
            NSLog("EvalsuiteBench: stream error: %@", message)
            echo("error: \(message)")
            let failed = StreamResult(requestId: requestId, status: "error", error: message, device: device,
                                      thermalState: startThermal, thermalStart: startThermal, request: request,
                                      arrivalsMs: [], stages: [], summary: nil)
            do {
                try failed.write(to: resultURL)
            } catch {
                NSLog("EvalsuiteBench: cannot write %@: %@", resultURL.path, describe(error))
            }
            if let request { cleanUp(request, documents: documents) }
            return "error: \(message)"
        }
    }

    /// The pushed stage zips and the request are removed after the run; result and log stay.
    static func cleanUp(_ request: StreamRequest, documents: URL) {
        for stage in request.stages where stage.package.lowercased().hasSuffix(".zip") {
            try? FileManager.default.removeItem(at: documents.appendingPathComponent(stage.package))
        }
        try? FileManager.default.removeItem(
            at: documents.appendingPathComponent("\(request.requestId).stream-request.json"))
    }
}
