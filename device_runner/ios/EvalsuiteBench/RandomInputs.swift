// Random inputs for a timing run: seeded (SplitMix64), so every run predicts on the same values. The request's
// input specs win where they name an input; other inputs are built from the compiled model's own description
// (multi-arrays and images). Latency does not depend on the values, only on shapes and types.

import CoreML
import CoreVideo
import Foundation

/// Small, seeded, dependency-free generator (SplitMix64): the same inputs on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    mutating func nextSigned() -> Float {
        Float(next() >> 40) / Float(1 << 24) * 2 - 1
    }
}

func multiArrayType(_ dtype: String) throws -> MLMultiArrayDataType {
    switch dtype {
    case "float32": return .float32
    case "float16": return .float16
    case "float64": return .double
    case "int32": return .int32
    default: throw BenchError.badRequest("input dtype \(dtype) (use float32, float16, float64 or int32)")
    }
}

func randomArray(shape: [Int], dataType: MLMultiArrayDataType, seed: UInt64) throws -> MLMultiArray {
    guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
        throw BenchError.badRequest("input shape \(shape) is not a list of positive sizes")
    }
    let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: dataType)
    var rng = SplitMix64(seed: seed)
    switch dataType {
    case .float32:
        array.withUnsafeMutableBufferPointer(ofType: Float.self) { buffer, _ in
            for i in buffer.indices { buffer[i] = rng.nextSigned() }
        }
    case .double:
        array.withUnsafeMutableBufferPointer(ofType: Double.self) { buffer, _ in
            for i in buffer.indices { buffer[i] = Double(rng.nextSigned()) }
        }
    case .int32:
        array.withUnsafeMutableBufferPointer(ofType: Int32.self) { buffer, _ in
            for i in buffer.indices { buffer[i] = Int32(rng.next() % 10) }  // small: safe as ids or indices
        }
    case .float16:
        #if arch(arm64)
        array.withUnsafeMutableBufferPointer(ofType: Float16.self) { buffer, _ in
            for i in buffer.indices { buffer[i] = Float16(rng.nextSigned()) }
        }
        #else
        array.withUnsafeMutableBufferPointer(ofType: UInt16.self) { buffer, _ in
            for i in buffer.indices { buffer[i] = 0x3C00 }  // 1.0 (Float16 is arm64-only in Swift)
        }
        #endif
    default:
        throw BenchError.unsupported("multi-array data type \(dataType.rawValue)")
    }
    return array
}

func randomPixelBuffer(width: Int, height: Int, format: OSType, seed: UInt64) throws -> CVPixelBuffer {
    var created: CVPixelBuffer?
    let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:] as CFDictionary] as CFDictionary
    let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, format, attributes, &created)
    guard status == kCVReturnSuccess, let buffer = created else {
        throw BenchError.unsupported("cannot create a \(width)x\(height) pixel buffer of format \(format) " +
                                     "(CVReturn \(status))")
    }
    CVPixelBufferLockBaseAddress(buffer, [])
    defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
    if let base = CVPixelBufferGetBaseAddress(buffer) {
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var rng = SplitMix64(seed: seed)
        for i in 0..<(CVPixelBufferGetBytesPerRow(buffer) * height) {
            bytes[i] = UInt8(truncatingIfNeeded: rng.next())
        }
    }
    return buffer
}

/// A concrete shape for a multi-array input: the constraint's default, else the first enumerated shape, else the
/// lower bound of each flexible dimension.
func concreteShape(_ constraint: MLMultiArrayConstraint) -> [Int] {
    let shape = constraint.shape.map { $0.intValue }
    if !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) { return shape }
    let flexible = constraint.shapeConstraint
    if flexible.type == .enumerated, let first = flexible.enumeratedShapes.first {
        return first.map { $0.intValue }
    }
    if flexible.type == .range {
        return flexible.sizeRangeForDimension.map { max(1, $0.rangeValue.location) }
    }
    return shape
}

/// Random values for every input: the request's spec where it names the input, else the model's description.
func makeInputs(for model: MLModel, specs: [InputSpec]) throws -> MLFeatureProvider {
    let described = model.modelDescription.inputDescriptionsByName
    for spec in specs where described[spec.name] == nil {
        throw BenchError.badRequest("the request names input \(spec.name), which the model does not have " +
                                    "(it has \(described.keys.sorted().joined(separator: ", ")))")
    }
    var features: [String: MLFeatureValue] = [:]
    for (index, name) in described.keys.sorted().enumerated() {
        let seed = UInt64(index + 1)
        if let spec = specs.first(where: { $0.name == name }) {
            let array = try randomArray(shape: spec.shape, dataType: try multiArrayType(spec.dtype), seed: seed)
            features[name] = MLFeatureValue(multiArray: array)
            continue
        }
        guard let description = described[name] else { continue }
        switch description.type {
        case .multiArray:
            guard let constraint = description.multiArrayConstraint else {
                throw BenchError.unsupported("input \(name) has no multi-array constraint")
            }
            let array = try randomArray(shape: concreteShape(constraint), dataType: constraint.dataType, seed: seed)
            features[name] = MLFeatureValue(multiArray: array)
        case .image:
            guard let constraint = description.imageConstraint else {
                throw BenchError.unsupported("input \(name) has no image constraint")
            }
            let buffer = try randomPixelBuffer(width: constraint.pixelsWide, height: constraint.pixelsHigh,
                                               format: constraint.pixelFormatType, seed: seed)
            features[name] = MLFeatureValue(pixelBuffer: buffer)
        default:
            if description.isOptional { continue }
            throw BenchError.unsupported("input \(name) has feature type \(description.type.rawValue); give it a " +
                                         "multi-array spec in the request or time a model with array/image inputs")
        }
    }
    return try MLDictionaryFeatureProvider(dictionary: features)
}
