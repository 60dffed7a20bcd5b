// When the app dies of a fatal signal during a run (a Swift trap, a bad access, an abort inside Core ML), a
// signal handler writes the request's result file with status "error" and a `crash` marker, so the host reports
// a crash at once instead of waiting for its time-out. The JSON for each signal is built before the run; the
// handler only calls async-signal-safe functions (open, write, close, rename, signal, raise) on prepared C
// strings. A jetsam kill (SIGKILL: the model needs more memory than iOS grants) cannot be caught: the host then
// times out and shows the syslog, where jetsam names the app.

import Darwin
import Foundation

private let handledSignals: [Int32] = [SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE]
private let signalSlots = 64
private let crashPayloads: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
    let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: signalSlots)
    slots.initialize(repeating: nil, count: signalSlots)
    return slots
}()
private var crashTemporaryPath: UnsafeMutablePointer<CChar>?
private var crashResultPath: UnsafeMutablePointer<CChar>?

private func signalName(_ sig: Int32) -> String {
    switch sig {
    case SIGABRT: return "SIGABRT"
    case SIGSEGV: return "SIGSEGV"
    case SIGBUS: return "SIGBUS"
    case SIGILL: return "SIGILL"
    case SIGTRAP: return "SIGTRAP"
    case SIGFPE: return "SIGFPE"
    default: return "signal \(sig)"
    }
}

private func crashSignalHandler(_ sig: Int32) {
    if sig >= 0, sig < Int32(signalSlots), let payload = crashPayloads[Int(sig)],
       let temporary = crashTemporaryPath, let result = crashResultPath {
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 {
            _ = write(fd, payload, strlen(payload))
            _ = close(fd)
            _ = rename(temporary, result)
        }
    }
    signal(sig, SIG_DFL)  // then die of the same signal, so iOS still writes its crash report
    raise(sig)
}

enum CrashMarker {
    /// Prepare the crash result for this request and install the handlers.
    static func arm(resultURL: URL, requestId: String, device: DeviceInfo, meta: [String: String]) {
        disarm()
        for sig in handledSignals {
            let name = signalName(sig)
            let document: [String: Any] = [
                "schema": resultSchema,
                "request_id": requestId,
                "status": "error",
                "error": "the benchmark app crashed (\(name)); see the device log and its crash report",
                "crash": name,
                "device_model": device.machine,
                "os_version": device.osVersion,
                "app_version": device.appVersion,
                "thermal_state": "unknown",
                "meta": meta,
                "compute_units": [Any](),
            ]
            guard let data = try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]),
                  let text = String(data: data, encoding: .utf8) else { continue }
            crashPayloads[Int(sig)] = strdup(text)
        }
        crashTemporaryPath = strdup(resultURL.path + ".crash.tmp")
        crashResultPath = strdup(resultURL.path)
        for sig in handledSignals {
            signal(sig, crashSignalHandler)
        }
    }

    /// Restore the default handlers (before the real result is written: a later crash must not replace it).
    static func disarm() {
        for sig in handledSignals {
            signal(sig, SIG_DFL)
        }
        for slot in 0..<signalSlots {
            free(crashPayloads[slot])
            crashPayloads[slot] = nil
        }
        free(crashTemporaryPath)
        free(crashResultPath)
        crashTemporaryPath = nil
        crashResultPath = nil
    }
}
