import CLibFuzzer
import Glibc

/// Runs libFuzzer with the process's arguments, calling `testOneInput` for every input.
/// Each target's `@main` calls this: see CLibFuzzer.h for why libFuzzer's own `main` is not
/// the entry point.
public func runFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}
