/// An invariant of a fuzz target. A failure is a `fatalError` (a trap), which libFuzzer
/// reports as a crash and saves the input of; the message says which invariant broke.
@inline(__always)
public func check(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError("invariant: " + message(), file: file, line: line) }
}

/// The fuzz input as an array (the targets' APIs take `[UInt8]`).
@inline(__always)
public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Printable text of bytes for invariant messages: short, one line.
public func show(_ b: some Collection<UInt8>) -> String {
    var s = String(decoding: b.prefix(200), as: UTF8.self).debugDescription
    if b.count > 200 { s += "… (\(b.count) bytes)" }
    return s
}
