// The host <-> app protocol: request `evalsuite.ios-request/1` in, result `evalsuite.ios-result/1` out.
// Field by field in ../PROTOCOL.md; the host side is device_runner/protocol.py. Keep the two in step: a change
// to either document's fields means a new schema version on both sides.

import Foundation

let requestSchema = "evalsuite.ios-request/1"
let resultSchema = "evalsuite.ios-result/1"
let computeUnitNames = ["ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY"]

struct InputSpec: Decodable, Sendable {
    let name: String
    let shape: [Int]
    let dtype: String  // float32 | float16 | float64 | int32
}

/// Only the schema and id, read first so that a request of another version gets a clear error, not a decoding one.
struct RequestProbe: Decodable {
    let schema: String?
    let requestId: String?

    enum CodingKeys: String, CodingKey {
        case schema
        case requestId = "request_id"
    }
}

struct BenchRequest: Decodable, Sendable {
    let schema: String
    let requestId: String
    let package: String
    let resultFile: String
    let logFile: String
    let iterations: Int
    let warmup: Int
    let computeUnits: [String]
    let inputs: [InputSpec]
    let meta: [String: String]
    let durationS: Double  // a sustained run: seconds of timed predictions per compute unit; 0 = `iterations` only
    let windowS: Double    // sustained runs: window length in seconds

    enum CodingKeys: String, CodingKey {
        case schema, package, iterations, warmup, inputs, meta
        case durationS = "duration_s"
        case windowS = "window_s"
        case requestId = "request_id"
        case resultFile = "result_file"
        case logFile = "log_file"
        case computeUnits = "compute_units"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(String.self, forKey: .schema)
        requestId = try c.decode(String.self, forKey: .requestId)
        package = try c.decode(String.self, forKey: .package)
        resultFile = try c.decode(String.self, forKey: .resultFile)
        logFile = try c.decodeIfPresent(String.self, forKey: .logFile) ?? "\(requestId).log"
        iterations = try c.decode(Int.self, forKey: .iterations)
        warmup = try c.decode(Int.self, forKey: .warmup)
        computeUnits = try c.decode([String].self, forKey: .computeUnits)
        inputs = try c.decodeIfPresent([InputSpec].self, forKey: .inputs) ?? []
        meta = try c.decodeIfPresent([String: String].self, forKey: .meta) ?? [:]
        durationS = try c.decodeIfPresent(Double.self, forKey: .durationS) ?? 0
        windowS = try c.decodeIfPresent(Double.self, forKey: .windowS) ?? (durationS >= 300 ? 60 : durationS / 10)
    }

    /// Reads and checks a request file; every problem is a BenchError naming it.
    static func load(from url: URL) throws -> BenchRequest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BenchError.badRequest("cannot read the request \(url.lastPathComponent): \(describe(error))")
        }
        let probe = try? JSONDecoder().decode(RequestProbe.self, from: data)
        guard let schema = probe?.schema else {
            throw BenchError.badRequest("the request \(url.lastPathComponent) is not JSON with a schema field")
        }
        guard schema == requestSchema else {
            throw BenchError.badRequest("the request uses schema \(schema); this app reads \(requestSchema) " +
                                        "(rebuild the app from the evalsuite checkout that sent it)")
        }
        let request: BenchRequest
        do {
            request = try JSONDecoder().decode(BenchRequest.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw BenchError.badRequest("the request lacks the field \(key.stringValue)")
        } catch DecodingError.typeMismatch(_, let context) {
            let path = context.codingPath.map { $0.stringValue }.joined(separator: ".")
            throw BenchError.badRequest("the request's field \(path) has the wrong type")
        } catch {
            throw BenchError.badRequest("the request cannot be read: \(describe(error))")
        }
        try request.validate()
        return request
    }

    func validate() throws {
        guard iterations >= 1 else { throw BenchError.badRequest("iterations must be >= 1, not \(iterations)") }
        guard warmup >= 0 else { throw BenchError.badRequest("warmup must be >= 0, not \(warmup)") }
        guard durationS >= 0, durationS == 0 || (windowS > 0 && windowS <= durationS) else {
            throw BenchError.badRequest("duration_s \(durationS) / window_s \(windowS): need 0 < window <= duration")
        }
        guard !computeUnits.isEmpty else { throw BenchError.badRequest("the request names no compute unit") }
        for unit in computeUnits where !computeUnitNames.contains(unit) {
            let known = computeUnitNames.joined(separator: ", ")
            throw BenchError.badRequest("unknown compute unit \(unit) (use \(known))")
        }
        for name in [package, resultFile, logFile] where name.contains("/") || name.isEmpty {
            throw BenchError.badRequest("\(name) is not a plain file name in Documents")
        }
    }
}

struct UnitResult: Encodable, Sendable {
    let computeUnit: String
    let compileMs: Double
    let firstLoadMs: Double
    let warmLoadMs: Double
    let firstPredictMs: Double
    let latenciesMs: [Double]
    let thermalState: String
    let peakMemoryMb: Double?      // the largest phys_footprint sampled while predicting (MiB)
    let durationS: Double?         // sustained runs only
    let windows: [WindowResult]?   // sustained runs only

    enum CodingKeys: String, CodingKey {
        case computeUnit = "compute_unit"
        case compileMs = "compile_ms"
        case firstLoadMs = "first_load_ms"
        case warmLoadMs = "warm_load_ms"
        case firstPredictMs = "first_predict_ms"
        case latenciesMs = "latencies_ms"
        case thermalState = "thermal_state"
        case peakMemoryMb = "peak_memory_mb"
        case durationS = "duration_s"
        case windows
    }

    /// Optional fields are left out when nil (older hosts read the result unchanged).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(computeUnit, forKey: .computeUnit)
        try c.encode(compileMs, forKey: .compileMs)
        try c.encode(firstLoadMs, forKey: .firstLoadMs)
        try c.encode(warmLoadMs, forKey: .warmLoadMs)
        try c.encode(firstPredictMs, forKey: .firstPredictMs)
        try c.encode(latenciesMs, forKey: .latenciesMs)
        try c.encode(thermalState, forKey: .thermalState)
        try c.encodeIfPresent(peakMemoryMb, forKey: .peakMemoryMb)
        try c.encodeIfPresent(durationS, forKey: .durationS)
        try c.encodeIfPresent(windows, forKey: .windows)
    }
}

/// One window of a sustained run: seconds from the first timed prediction to the window's last one, the count of
/// timed predictions so far (the window holds latencies_ms[previous end..<end]), the worst thermal state in it.
struct WindowResult: Encodable, Sendable {
    let tS: Double
    let end: Int
    let thermalState: String

    enum CodingKeys: String, CodingKey {
        case end
        case tS = "t_s"
        case thermalState = "thermal_state"
    }
}

struct BenchResult: Encodable {
    var requestId: String
    var status: String  // ok | error
    var error: String?
    var device: DeviceInfo
    var thermalState: String
    var iterations: Int
    var warmup: Int
    var meta: [String: String]
    var computeUnits: [UnitResult]
    var timestamp: String = ISO8601DateFormatter().string(from: Date())

    enum CodingKeys: String, CodingKey {
        case schema, status, error, iterations, warmup, meta, timestamp
        case requestId = "request_id"
        case deviceModel = "device_model"
        case osVersion = "os_version"
        case appVersion = "app_version"
        case thermalState = "thermal_state"
        case computeUnits = "compute_units"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(resultSchema, forKey: .schema)
        try c.encode(requestId, forKey: .requestId)
        try c.encode(status, forKey: .status)
        try c.encode(error, forKey: .error)  // null when ok
        try c.encode(device.machine, forKey: .deviceModel)
        try c.encode(device.osVersion, forKey: .osVersion)
        try c.encode(device.appVersion, forKey: .appVersion)
        try c.encode(thermalState, forKey: .thermalState)
        try c.encode(iterations, forKey: .iterations)
        try c.encode(warmup, forKey: .warmup)
        try c.encode(meta, forKey: .meta)
        try c.encode(computeUnits, forKey: .computeUnits)
        try c.encode(timestamp, forKey: .timestamp)
    }

    /// Written atomically (temporary file + rename), so the host never pulls half a result.
    func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}

enum BenchError: Error, CustomStringConvertible {
    case badRequest(String)
    case unsupported(String)
    case zip(String)

    var description: String {
        switch self {
        case .badRequest(let message): return "bad request: \(message)"
        case .unsupported(let message): return "unsupported: \(message)"
        case .zip(let message): return "package zip: \(message)"
        }
    }
}

/// A readable one-line message for any error (Core ML's NSErrors carry their domain and code).
func describe(_ error: Error) -> String {
    if let bench = error as? BenchError { return bench.description }
    let ns = error as NSError
    return "\(ns.localizedDescription) (\(ns.domain) \(ns.code))"
}
