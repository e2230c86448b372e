import Foundation
import Gateway

// One program for both roles: installed as /usr/bin/vitalgate and, through a symbolic link, as /usr/bin/vitalgated,
// so a hub carries the statically linked Swift runtime once (the Debian package ships the link).
if URL(fileURLWithPath: CommandLine.arguments.first ?? "").lastPathComponent == "vitalgated" {
    exit(Daemon.main(Array(CommandLine.arguments.dropFirst())))
}
let result = CommandLineTool.run(Array(CommandLine.arguments.dropFirst()))
FileHandle.standardOutput.write(Data(result.stdout.utf8))
FileHandle.standardError.write(Data(result.stderr.utf8))
exit(result.exitCode)
