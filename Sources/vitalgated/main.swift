import Foundation
import Gateway

// vitalgated: the VitalGate service. Everything lives in Gateway's `Daemon` so tests can reach it.
exit(Daemon.main(Array(CommandLine.arguments.dropFirst())))
