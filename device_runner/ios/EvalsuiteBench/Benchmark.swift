// The measurement: per compute unit, compile the package with MLModel.compileModel(at:), load it twice (first
// load = device specialisation, then a warm load), predict once, run `warmup` untimed and `iterations` timed
// predictions on random inputs (RandomInputs.swift), or with the request's duration_s a sustained run: timed
// predictions until that many seconds have passed (at least `iterations`), with the latency and worst thermal state
// per window of window_s. Every time comes from mach_absolute_time, converted with mach_timebase_info. Peak memory
// is the largest phys_footprint (task_info TASK_VM_INFO, what jetsam judges) sampled after the first prediction and
// after every timed one, outside the timed span.

import CoreML
import Darwin
import Foundation

// MARK: - Device

struct DeviceInfo: Sendable {
    let machine: String     // utsname.machine, e.g. iPhone17,2
    let osVersion: String   // UIDevice.current.systemVersion, e.g. 18.1
    let appVersion: String  // CFBundleShortVersionString (CFBundleVersion)

    static func machineCode() -> String {
        if let simulated = ProcessInfo.processInfo.environment["SIMULATOR_MODEL_IDENTIFIER"] {
            return simulated  // the simulator reports the Mac's architecture in utsname
        }
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

// MARK: - Clock and thermal state

enum Clock {
    static let timebase: mach_timebase_info_data_t = {
        var info = mach_timebase_info_data_t()
        mach_timebase_info(&info)
        return info
    }()

    @inline(__always) static func now() -> UInt64 { mach_absolute_time() }

    /// Milliseconds between two mach_absolute_time readings.
    static func ms(_ start: UInt64, _ end: UInt64) -> Double {
        let ticks = end >= start ? end - start : 0
        return Double(ticks) * Double(timebase.numer) / Double(timebase.denom) / 1_000_000.0
    }
}

func thermalName(_ state: ProcessInfo.ThermalState) -> String {
    switch state {
    case .nominal: return "nominal"
    case .fair: return "fair"
    case .serious: return "serious"
    case .critical: return "critical"
    @unknown default: return "unknown"
    }
}

/// The worst (highest) thermal state seen since creation.
struct ThermalWatch {
    private(set) var worst = ProcessInfo.processInfo.thermalState

    mutating func sample() {
        let now = ProcessInfo.processInfo.thermalState
        if now.rawValue > worst.rawValue { worst = now }
    }

    var name: String { thermalName(worst) }
}

/// The process's physical footprint in MiB (task_vm_info.phys_footprint), or nil if task_info fails.
func physFootprintMiB() -> Double? {
    var info = task_vm_info_data_t()
    var count = mach_msg_type_number_t(MemoryLayout<task_vm_info_data_t>.size / MemoryLayout<integer_t>.size)
    let status = withUnsafeMutablePointer(to: &info) { pointer in
        pointer.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
            task_info(mach_task_self_, task_flavor_t(TASK_VM_INFO), $0, &count)
        }
    }
    guard status == KERN_SUCCESS else { return nil }
    return Double(info.phys_footprint) / 1_048_576.0
}

/// The largest footprint seen.
struct MemoryWatch {
    private(set) var peakMiB: Double?

    mutating func sample() {
        guard let now = physFootprintMiB() else { return }
        peakMiB = max(peakMiB ?? 0, now)
    }
}

// MARK: - The measurement

func computeUnits(named name: String) throws -> MLComputeUnits {
    switch name {
    case "ALL": return .all
    case "CPU_AND_NE": return .cpuAndNeuralEngine
    case "CPU_AND_GPU": return .cpuAndGPU
    case "CPU_ONLY": return .cpuOnly
    default: throw BenchError.badRequest("unknown compute unit \(name)")
    }
}

final class Benchmark {
    let request: BenchRequest
    let documents: URL
    let progress: ProgressLog
    private let scratch: URL

    init(request: BenchRequest, documents: URL, progress: ProgressLog) {
        self.request = request
        self.documents = documents
        self.progress = progress
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent(request.requestId, isDirectory: true)
    }

    /// One result per requested compute unit, in the request's order.
    func run() async throws -> [UnitResult] {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let package = try preparePackage()
        var results: [UnitResult] = []
        for name in request.computeUnits {
            results.append(try await measure(package: package, unitName: name))
        }
        return results
    }

    /// The .mlpackage to compile: extracted from the pushed stored zip, or a package folder already in Documents.
    func preparePackage() throws -> URL {
        let source = documents.appendingPathComponent(request.package)
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw BenchError.badRequest("the package \(request.package) is not in the app's Documents folder")
        }
        guard source.pathExtension.lowercased() == "zip" else { return source }
        let destination = scratch.appendingPathComponent("package", isDirectory: true)
        try? FileManager.default.removeItem(at: destination)
        let t0 = Clock.now()
        try extractStoredZip(at: source, to: destination)
        progress("extracted \(request.package) in \(String(format: "%.0f", Clock.ms(t0, Clock.now()))) ms")
        let entries = try FileManager.default.contentsOfDirectory(at: destination, includingPropertiesForKeys: nil)
        guard let package = entries.first(where: { $0.pathExtension == "mlpackage" }) else {
            throw BenchError.badRequest("\(request.package) holds no .mlpackage folder")
        }
        return package
    }

    func measure(package: URL, unitName: String) async throws -> UnitResult {
        let units = try computeUnits(named: unitName)
        var thermal = ThermalWatch()

        progress("[\(unitName)] compiling \(package.lastPathComponent)")
        var t0 = Clock.now()
        let compiled = try await MLModel.compileModel(at: package)
        let compileMs = Clock.ms(t0, Clock.now())
        defer { try? FileManager.default.removeItem(at: compiled) }
        progress("[\(unitName)] compiled in \(fmt(compileMs)) ms; first load (device specialisation)")

        let configuration = MLModelConfiguration()
        configuration.computeUnits = units
        let firstLoadMs: Double
        do {
            t0 = Clock.now()
            let cold = try await MLModel.load(contentsOf: compiled, configuration: configuration)
            firstLoadMs = Clock.ms(t0, Clock.now())
            _ = cold.modelDescription  // released at the end of this scope, before the warm load
        }
        thermal.sample()
        progress("[\(unitName)] first load \(fmt(firstLoadMs)) ms; warm load")

        t0 = Clock.now()
        let model = try await MLModel.load(contentsOf: compiled, configuration: configuration)
        let warmLoadMs = Clock.ms(t0, Clock.now())
        let inputs = try makeInputs(for: model, specs: request.inputs)
        progress("[\(unitName)] warm load \(fmt(warmLoadMs)) ms; first prediction")

        var memory = MemoryWatch()
        t0 = Clock.now()
        try autoreleasepool { _ = try model.prediction(from: inputs) }
        let firstPredictMs = Clock.ms(t0, Clock.now())
        memory.sample()
        progress("[\(unitName)] first prediction \(fmt(firstPredictMs)) ms; \(request.warmup) warmup, " +
            "\(request.iterations) timed")

        for _ in 0..<request.warmup {
            try autoreleasepool { _ = try model.prediction(from: inputs) }
        }
        var latencies: [Double] = []
        latencies.reserveCapacity(request.iterations)
        let sustained = request.durationS > 0
        var windows: [WindowResult] = []
        var windowThermal = ThermalWatch()  // the worst state in the current window
        var edge = request.windowS
        let runStart = Clock.now()
        var elapsed = 0.0
        var i = 0
        while i < request.iterations || (sustained && elapsed < request.durationS) {
            let start = Clock.now()
            try autoreleasepool { _ = try model.prediction(from: inputs) }
            let end = Clock.now()
            latencies.append(Clock.ms(start, end))
            elapsed = Clock.ms(runStart, end) / 1000
            memory.sample()  // outside the timed span
            if i % 10 == 9 || sustained { thermal.sample() }
            i += 1
            guard sustained else { continue }
            windowThermal.sample()
            let done = !(i < request.iterations || elapsed < request.durationS)
            if elapsed >= edge || done {
                windows.append(WindowResult(tS: elapsed, end: latencies.count, thermalState: windowThermal.name))
                progress("[\(unitName)] \(String(format: "%.0f", elapsed)) s: \(latencies.count) predictions, " +
                         "thermal \(windowThermal.name)")
                windowThermal = ThermalWatch()
                while edge <= elapsed { edge += request.windowS }
            }
        }
        thermal.sample()
        let sorted = latencies.sorted()
        progress("[\(unitName)] median \(fmt(sorted[sorted.count / 2])) ms over \(latencies.count); " +
                 "thermal \(thermal.name); peak footprint \(fmt(memory.peakMiB ?? 0)) MiB")
        return UnitResult(computeUnit: unitName, compileMs: compileMs, firstLoadMs: firstLoadMs,
                          warmLoadMs: warmLoadMs, firstPredictMs: firstPredictMs, latenciesMs: latencies,
                          thermalState: thermal.name, peakMemoryMb: memory.peakMiB,
                          durationS: sustained ? elapsed : nil, windows: sustained ? windows : nil)
    }
}

func fmt(_ ms: Double) -> String { String(format: "%.1f", ms) }

// MARK: - Progress log

/// Progress lines: appended to Documents/<request_id>.log (the host pulls it on a time-out or crash), sent to the
/// system log (NSLog: `pymobiledevice3 syslog live` shows them as EvalsuiteBench[pid]) and to the screen.
final class ProgressLog: @unchecked Sendable {
    private let url: URL
    private let echo: @Sendable (String) -> Void
    private let lock = NSLock()
    private let stamp = ISO8601DateFormatter()

    init(url: URL, echo: @escaping @Sendable (String) -> Void) {
        self.url = url
        self.echo = echo
        FileManager.default.createFile(atPath: url.path, contents: nil)
    }

    func callAsFunction(_ message: String) {
        lock.lock()
        defer { lock.unlock() }
        let line = "\(stamp.string(from: Date())) \(message)"
        NSLog("EvalsuiteBench: %@", message)
        echo(line)
        guard let handle = try? FileHandle(forWritingTo: url) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data((line + "\n").utf8))
    }
}

// MARK: - One request, start to finish

enum BenchmarkRun {
    static var documents: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
    }

    /// `--request` paths are as the host pushed them: relative to the app container (house_arrest's root, e.g.
    /// /Documents/x.request.json), or a bare file name in Documents.
    static func resolve(_ path: String) -> URL {
        guard path.hasPrefix("/") else { return documents.appendingPathComponent(path) }
        let inContainer = URL(fileURLWithPath: NSHomeDirectory(), isDirectory: true)
            .appendingPathComponent(String(path.dropFirst()))
        if FileManager.default.fileExists(atPath: inContainer.path) { return inContainer }
        return URL(fileURLWithPath: path)
    }

    /// Runs the request and always leaves a result file (status ok or error) unless the process dies; a fatal
    /// signal leaves one with a `crash` marker (CrashMarker). Returns a line for the screen.
    static func execute(requestPath: String, device: DeviceInfo,
                        echo: @escaping @Sendable (String) -> Void) async -> String {
        let requestURL = resolve(requestPath)
        // Until the request is read, name the result after the request file: <id>.request.json -> <id>.result.json
        var requestId = requestURL.lastPathComponent.replacingOccurrences(of: ".request.json", with: "")
        var resultURL = documents.appendingPathComponent("\(requestId).result.json")
        var request: BenchRequest?
        let startThermal = thermalName(ProcessInfo.processInfo.thermalState)
        do {
            let loaded = try BenchRequest.load(from: requestURL)
            request = loaded
            requestId = loaded.requestId
            resultURL = documents.appendingPathComponent(loaded.resultFile)
            try? FileManager.default.removeItem(at: resultURL)  // never leave an older result to be pulled
            let progress = ProgressLog(url: documents.appendingPathComponent(loaded.logFile), echo: echo)
            CrashMarker.arm(resultURL: resultURL, requestId: requestId, device: device, meta: loaded.meta)
            progress("request \(requestId) on \(device.machine) iOS \(device.osVersion), thermal \(startThermal)")
            let units = try await Benchmark(request: loaded, documents: documents, progress: progress).run()
            CrashMarker.disarm()
            try BenchResult(requestId: requestId, status: "ok", error: nil, device: device,
                            thermalState: startThermal, iterations: loaded.iterations, warmup: loaded.warmup,
                            meta: loaded.meta, computeUnits: units).write(to: resultURL)
            progress("wrote \(resultURL.lastPathComponent)")
            cleanUp(loaded)
            return "done: \(resultURL.lastPathComponent)"
        } catch {
            CrashMarker.disarm()
            let message = describe(error)
            NSLog("EvalsuiteBench: error: %@", message)
            echo("error: \(message)")
            let failed = BenchResult(requestId: requestId, status: "error", error: message, device: device,
                                     thermalState: startThermal, iterations: request?.iterations ?? 0,
                                     warmup: request?.warmup ?? 0, meta: request?.meta ?? [:], computeUnits: [])
            do {
                try failed.write(to: resultURL)
            } catch {
                NSLog("EvalsuiteBench: cannot write %@: %@", resultURL.path, describe(error))
            }
            if let request { cleanUp(request) }
            return "error: \(message)"
        }
    }

    /// The pushed package and request are removed after the run (packages are large); result and log stay.
    static func cleanUp(_ request: BenchRequest) {
        if request.package.lowercased().hasSuffix(".zip") {
            try? FileManager.default.removeItem(at: documents.appendingPathComponent(request.package))
        }
        try? FileManager.default.removeItem(at: documents.appendingPathComponent("\(request.requestId).request.json"))
    }
}
