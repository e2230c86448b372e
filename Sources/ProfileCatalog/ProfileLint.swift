import Foundation
import VitalModel
import ProfileEngine

/// `vitalgate profile lint`: the loader's checks plus those that need the files around a profile.
public struct LintFinding: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public var severity: Severity
    public var error: ProfileError

    public var description: String { "\(severity.rawValue): \(error)" }
}

public enum ProfileLint {
    /// Checks one profile file; an empty result means it is fit to ship.
    public static func lint(file: String) -> [LintFinding] {
        let profile: DeviceProfile
        do {
            profile = try ProfileLoader.load(file: file, expectedID: ProfileCatalog.expectedID(for: file))
        } catch {
            return [LintFinding(severity: .error, error: error)]
        }
        return lint(profile)
    }

    public static func lint(_ profile: DeviceProfile) -> [LintFinding] {
        var findings: [LintFinding] = []
        func add(_ severity: LintFinding.Severity, _ field: String, _ problem: String, _ fix: String, file: String? = nil) {
            findings.append(LintFinding(severity: severity, error: ProfileError(file: file ?? profile.file, location: nil, field: field, problem: problem, fix: fix)))
        }

        // Declared kinds and produced kinds agree.
        var produced: Set<MeasurementKind> = []
        if let frames = profile.engine as? FramesEngine {
            produced = Set(frames.spec.messages.compactMap { $0.reading?.kind })
            if frames.spec.messages.allSatisfy({ $0.reading == nil }) {
                add(.error, "engine.frames.messages", "no message produces a reading", "add a \"reading\" to the message that carries the measurement")
            }
        } else if profile.engine is GATTStandardEngine {
            produced = Set(profile.engine.inputs.compactMap { standardCharacteristicKinds[$0] })
        } else {
            produced = Set(profile.kinds)  // vendor engines check their own parameters
        }
        for kind in profile.kinds where !produced.contains(kind) {
            add(.error, "kinds", "declares \"\(kind.rawValue)\" but the engine produces no such reading", "remove it from kinds or map a message to it")
        }

        // Golden captures with expected readings and named sources.
        let directory = ProfileCatalog.captureDirectory(for: profile)
        let captures = ProfileCatalog.captures(for: profile)
        if captures.isEmpty {
            add(.error, "", "no captures in \(directory)/", "add at least one real device capture (*.capture) with its *.expected.json")
        }
        for capture in captures {
            do {
                _ = try Capture.load(file: capture)
            } catch {
                findings.append(LintFinding(severity: .error, error: error))
            }
            let expected = ProfileCatalog.expectedFile(for: capture)
            if !FileManager.default.fileExists(atPath: expected) {
                add(.error, "", "\(capture) has no expected readings", "write \(expected) from the values the source states", file: capture)
            } else {
                do { _ = try ExpectedReadings.load(file: expected) } catch { findings.append(LintFinding(severity: .error, error: error)) }
            }
        }
        if !captures.isEmpty, !FileManager.default.fileExists(atPath: directory + "/SOURCES.md") {
            add(.error, "", "\(directory)/SOURCES.md is missing", "name where every capture comes from (repository, path, commit or URL)")
        }
        if case .serial(let serial) = profile.transport, serial.flowControl == .rtsCts, serial.rts != nil {
            add(.warning, "transport.serial.rts", "RTS is driven by hardware flow control", "remove rts or use another flow control")
        }
        return findings
    }

    /// Profiles that claim the same USB ids without product strings to tell them apart.
    public static func overlaps(in catalog: ProfileCatalog) -> [LintFinding] {
        var seen: [String: DeviceProfile] = [:]
        var findings: [LintFinding] = []
        for profile in catalog.profiles {
            for usb in profile.match.usb {
                let key = usb.vendorProduct + "|" + (usb.manufacturer ?? "") + "|" + (usb.product ?? "") + "|" + (usb.interface.map(String.init) ?? "")
                if let other = seen[key], other.id != profile.id {
                    findings.append(LintFinding(severity: .warning, error: ProfileError(
                        file: profile.file, location: nil, field: "match.usb",
                        problem: "\(usb.vendorProduct) is also claimed by \(other.id) with the same strings",
                        fix: "add the USB product or manufacturer string that tells the devices apart")))
                }
                seen[key] = profile
            }
        }
        return findings
    }
}
