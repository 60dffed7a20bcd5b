// A reader for exactly the zip the host writes (device_runner.backends.iphone.zip_package): entries *stored*
// (method 0, no compression), sizes in each local header (no data descriptors), zip64 extras for entries over
// 4 GiB. iOS has no public unzip API; this keeps the app free of dependencies. Entries are read one after another
// from the local headers and streamed to disk in 8 MiB chunks, so multi-GB weights never sit in memory.

import Foundation

private let localHeaderSignature: UInt32 = 0x0403_4B50
private let centralHeaderSignature: UInt32 = 0x0201_4B50
private let endOfCentralDirectorySignature: UInt32 = 0x0605_4B50
private let chunkSize: UInt64 = 8 << 20

func extractStoredZip(at zipURL: URL, to destination: URL) throws {
    let fm = FileManager.default
    let input: FileHandle
    do {
        input = try FileHandle(forReadingFrom: zipURL)
    } catch {
        throw BenchError.zip("cannot open \(zipURL.lastPathComponent): \(describe(error))")
    }
    defer { try? input.close() }
    try fm.createDirectory(at: destination, withIntermediateDirectories: true)

    var offset: UInt64 = 0
    var entries = 0
    while true {
        try input.seek(toOffset: offset)
        guard let header = try input.read(upToCount: 30), header.count >= 4 else {
            throw BenchError.zip("truncated at byte \(offset)")
        }
        let signature = header.le32(0)
        if signature == centralHeaderSignature || signature == endOfCentralDirectorySignature { break }
        guard signature == localHeaderSignature, header.count == 30 else {
            throw BenchError.zip("no local file header at byte \(offset)")
        }
        let flags = header.le16(6)
        let method = header.le16(8)
        var compressedSize = UInt64(header.le32(18))
        var size = UInt64(header.le32(22))
        let nameLength = Int(header.le16(26))
        let extraLength = Int(header.le16(28))
        guard flags & 0x0001 == 0 else { throw BenchError.zip("encrypted entries are not supported") }
        guard flags & 0x0008 == 0 else {
            throw BenchError.zip("entries with data descriptors are not supported (zip with the host's zip_package)")
        }
        guard method == 0 else {
            throw BenchError.zip("compression method \(method); only stored (0) entries are supported")
        }
        guard let nameData = try input.read(upToCount: nameLength), nameData.count == nameLength else {
            throw BenchError.zip("truncated entry name at byte \(offset)")
        }
        var extra = Data()
        if extraLength > 0 {
            extra = try input.read(upToCount: extraLength) ?? Data()
        }
        if size == 0xFFFF_FFFF || compressedSize == 0xFFFF_FFFF {
            // zip64 extended information (header id 1): original size, then compressed size, each only when the
            // local header's field is 0xFFFFFFFF
            var position = 0
            var found = false
            while position + 4 <= extra.count {
                let id = extra.le16(position)
                let length = Int(extra.le16(position + 2))
                if id == 0x0001 {
                    var field = position + 4
                    if size == 0xFFFF_FFFF, field + 8 <= extra.count { size = extra.le64(field); field += 8 }
                    if compressedSize == 0xFFFF_FFFF, field + 8 <= extra.count { compressedSize = extra.le64(field) }
                    found = true
                    break
                }
                position += 4 + length
            }
            guard found else { throw BenchError.zip("zip64 sizes without a zip64 extra field") }
        }
        guard compressedSize == size else { throw BenchError.zip("a stored entry whose sizes differ") }

        let name = String(decoding: nameData, as: UTF8.self)
        let parts = name.split(separator: "/")
        guard !name.hasPrefix("/"), !parts.contains(".."), !parts.isEmpty else {
            throw BenchError.zip("unsafe entry name \(name)")
        }
        let dataStart = offset + 30 + UInt64(nameLength) + UInt64(extraLength)
        let target = destination.appendingPathComponent(name)
        if name.hasSuffix("/") {
            try fm.createDirectory(at: target, withIntermediateDirectories: true)
        } else {
            try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard fm.createFile(atPath: target.path, contents: nil) else {
                throw BenchError.zip("cannot create \(name)")
            }
            let output = try FileHandle(forWritingTo: target)
            defer { try? output.close() }
            try input.seek(toOffset: dataStart)
            var remaining = size
            while remaining > 0 {
                let count = Int(min(remaining, chunkSize))
                guard let data = try input.read(upToCount: count), data.count == count else {
                    throw BenchError.zip("\(name) is truncated")
                }
                try output.write(contentsOf: data)
                remaining -= UInt64(count)
            }
        }
        entries += 1
        offset = dataStart + compressedSize
    }
    guard entries > 0 else { throw BenchError.zip("\(zipURL.lastPathComponent) holds no entries") }
}

private extension Data {
    func byte(_ at: Int) -> UInt64 { UInt64(self[startIndex + at]) }
    func le16(_ at: Int) -> UInt16 { UInt16(byte(at) | byte(at + 1) << 8) }
    func le32(_ at: Int) -> UInt32 { UInt32((0..<4).reduce(UInt64(0)) { $0 | byte(at + $1) << (8 * UInt64($1)) }) }
    func le64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | byte(at + $1) << (8 * UInt64($1)) } }
}
