// Evalsuite Bench: times a Core ML package on this iPhone for evalsuite's `iphone` backend. The host pushes a
// package and a request into Documents and launches the app with `--request <path>` (pymobiledevice3
// `developer dvt launch`), or `--stream-request <path>` for a streaming video run (StreamBenchmark.swift); the app
// measures on a background task and writes the result next to the request.
// Launched without `--request`, it only shows that it is waiting.

import SwiftUI
import UIKit

@main
struct EvalsuiteBenchApp: App {
    @StateObject private var runner = BenchRunner()

    var body: some Scene {
        WindowGroup {
            ContentView(runner: runner)
                .onAppear { runner.startFromLaunchArguments() }
        }
    }
}

struct ContentView: View {
    @ObservedObject var runner: BenchRunner

    var body: some View {
        VStack(alignment: .leading, spacing: 12) {
            Text("Evalsuite Bench").font(.title2).bold()
            Text(runner.status).font(.system(.body, design: .monospaced))
            ScrollView {
                Text(runner.lines.joined(separator: "\n"))
                    .font(.system(.caption, design: .monospaced))
                    .frame(maxWidth: .infinity, alignment: .leading)
                    .textSelection(.enabled)
            }
        }
        .padding()
    }
}

@MainActor
final class BenchRunner: ObservableObject {
    @Published var status = "waiting: the host launches this app with --request <path> " +
        "(see device_runner/ios/README.md)"
    @Published var lines: [String] = []
    private var started = false

    func startFromLaunchArguments() {
        guard !started else { return }
        started = true
        let arguments = CommandLine.arguments
        let stream = arguments.contains("--stream-request")  // StreamBenchmark.swift: a streaming video run
        guard let flag = arguments.firstIndex(of: stream ? "--stream-request" : "--request"),
              flag + 1 < arguments.count else { return }
        let requestPath = arguments[flag + 1]
        let info = Bundle.main.infoDictionary ?? [:]
        let device = DeviceInfo(
            machine: DeviceInfo.machineCode(),
            osVersion: UIDevice.current.systemVersion,  // UIKit: read here, on the main actor
            appVersion: "\(info["CFBundleShortVersionString"] as? String ?? "?") " +
                "(\(info["CFBundleVersion"] as? String ?? "?"))")
        UIApplication.shared.isIdleTimerDisabled = true  // a dimmed, locked screen would suspend the run
        status = "running \(requestPath)"
        // off the main actor; the runner lives as long as the app, so the closures hold it strongly
        Task.detached(priority: .userInitiated) {
            let echo: @Sendable (String) -> Void = { line in Task { @MainActor in self.lines.append(line) } }
            let outcome: String
            if stream {
                outcome = await StreamBenchmarkRun.execute(requestPath: requestPath, device: device, echo: echo)
            } else {
                outcome = await BenchmarkRun.execute(requestPath: requestPath, device: device, echo: echo)
            }
            await MainActor.run {
                self.status = outcome
                UIApplication.shared.isIdleTimerDisabled = false
            }
        }
    }
}
