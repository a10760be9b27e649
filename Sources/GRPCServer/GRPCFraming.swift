import ContextModel
import NIOCore

/// gRPC's length-prefixed messages (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): a
/// compressed flag byte, a 4-byte big-endian length, then the message. A pure state machine:
/// feed it bytes in any split, it says what it found.
struct GRPCMessageReader {
    enum Event: Equatable {
        /// A whole message (its bytes, without the prefix).
        case message(ByteBuffer)
        /// The prefix announced a message over the limit: refuse before buffering it.
        case tooLarge(length: UInt32)
        /// The compressed flag is set: the caller decides (we support no compression).
        case compressed
        /// The flag byte is neither 0 nor 1: the message is malformed (PROTOCOL-HTTP2.md
        /// defines only those two values; grpc-go refuses others as INTERNAL).
        case badFlag(UInt8)
    }

    private enum State {
        case prefix
        case body(length: Int)
        case failed
    }

    let maxMessageBytes: Int
    private var state = State.prefix
    /// What was received and not yet read as a prefix or message. Either a chunk adopted as it
    /// came (`adopted`: it shares storage with the buffer the chunk is a slice of, NIO's read
    /// buffer, which it keeps alive), or bytes of several chunks gathered in storage of its
    /// own. Emptied (no storage) whenever nothing is pending, so that a read buffer stays
    /// pinned here only while a message is incomplete.
    private var pending: ByteBuffer
    private var adopted = false
    private let allocator: ByteBufferAllocator

    init(maxMessageBytes: Int, allocator: ByteBufferAllocator) {
        self.maxMessageBytes = maxMessageBytes
        self.allocator = allocator
        self.pending = allocator.buffer(capacity: 0)  // capacity 0: no allocation
    }

    /// Bytes received but not yet a whole prefix or message. A prefix read whole leaves
    /// nothing pending yet announces a body, so the state says it too (a body of length 0 is
    /// read at once and never waits here).
    var hasPartialMessage: Bool {
        switch state {
        case .failed: false
        case .body: true
        case .prefix: pending.readableBytes > 0
        }
    }

    /// Takes `chunk` and returns what is complete; messages are slices of what was received.
    /// With nothing pending, the chunk is adopted as it is (no copy): a chunk that holds whole
    /// messages yields slices of it, sharing its storage. Only a message split across chunks
    /// is gathered, by copy, in storage of the reader's own. After `.tooLarge`, `.compressed`
    /// or `.badFlag` the reader is spent and ignores the rest.
    mutating func feed(_ chunk: ByteBuffer) -> [Event] {
        if case .failed = state { return [] }
        append(chunk)
        var events: [Event] = []
        defer { releaseIfEmpty() }
        while true {
            switch state {
            case .failed:
                return events
            case .prefix:
                guard pending.readableBytes >= 5,
                      let flag = pending.readInteger(as: UInt8.self),
                      let length = pending.readInteger(endianness: .big, as: UInt32.self) else { return events }
                if flag > 1 {
                    state = .failed
                    events.append(.badFlag(flag))
                    return events
                }
                if flag == 1 {
                    state = .failed
                    events.append(.compressed)
                    return events
                }
                if Int(length) > maxMessageBytes {
                    state = .failed
                    events.append(.tooLarge(length: length))
                    return events
                }
                state = .body(length: Int(length))
            case .body(let length):
                guard let message = pending.readSlice(length: length) else { return events }
                events.append(.message(message))
                state = .prefix
            }
        }
    }

    /// Whether what is pending shares a read buffer much larger than itself.
    var pinsLargerBuffer: Bool { adopted && ByteBuffer.pinsLarger(pending) }

    /// Pending bytes that are a slice of a read buffer go to storage of their own, so that a
    /// partial message keeps only its own bytes past the read it came in (the request budgets
    /// count those, not the read buffer).
    mutating func compact() {
        guard pinsLargerBuffer else { return }
        pending = ByteBuffer.ownCopy(of: pending, allocator: allocator)
        adopted = false
    }

    private mutating func append(_ chunk: ByteBuffer) {
        guard chunk.readableBytes > 0 else { return }
        if pending.readableBytes == 0 {
            pending = chunk
            adopted = true
        } else if adopted {
            // The rest of an adopted chunk and the next one, gathered in storage of our own
            // (sized for both; further chunks grow it): the read buffer is let go.
            var gathered = allocator.buffer(capacity: pending.readableBytes + chunk.readableBytes)
            gathered.writeImmutableBuffer(pending)
            gathered.writeImmutableBuffer(chunk)
            pending = gathered
            adopted = false
        } else {
            pending.discardReadBytes()  // our own storage: slides the partial message to the front
            pending.writeImmutableBuffer(chunk)
        }
    }

    /// Nothing pending: let go of the storage (an adopted chunk's is NIO's read buffer).
    /// Messages already read out are slices that keep it alive only as long as they live.
    private mutating func releaseIfEmpty() {
        guard pending.readableBytes == 0, pending.capacity > 0 else { return }
        pending = allocator.buffer(capacity: 0)
        adopted = false
    }
}

extension ByteBuffer {
    /// Whether `slice`'s storage is much larger than its readable bytes: a slice of a read
    /// buffer that holds other requests too (or bytes already read).
    static func pinsLarger(_ slice: ByteBuffer) -> Bool {
        slice.storageCapacity > 2 * slice.readableBytes + 512
    }

    /// `buffer`'s readable bytes in storage of their own.
    static func ownCopy(of buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var own = allocator.buffer(capacity: buffer.readableBytes)
        own.writeImmutableBuffer(buffer)
        return own
    }
}

enum GRPCFraming {
    /// `grpc-timeout` (PROTOCOL-HTTP2.md): 1 to 8 ASCII digits and a unit (H M S m u n).
    /// Nil when malformed.
    static func parseTimeout(_ value: some BidirectionalCollection<UInt8>) -> TimeAmount? {
        guard value.count >= 2, value.count <= 9, let unit = value.last else { return nil }
        var amount: Int64 = 0
        for byte in value.dropLast() {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            amount = amount * 10 + Int64(byte - 0x30)
        }
        switch unit {
        case UInt8(ascii: "H"): return .hours(amount)
        case UInt8(ascii: "M"): return .minutes(amount)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// `grpc-message` is percent-encoded UTF-8: every byte outside 0x20...0x7E, and '%'
    /// itself, as %XX (PROTOCOL-HTTP2.md, "Status-Message").
    static func percentEncode(_ message: String) -> String {
        let needs = message.utf8.contains { $0 < 0x20 || $0 > 0x7E || $0 == UInt8(ascii: "%") }
        guard needs else { return message }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(message.utf8.count * 3)
        for b in message.utf8 {
            if b < 0x20 || b > 0x7E || b == UInt8(ascii: "%") {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The statuses of the gRPC layer itself (PROTOCOL-HTTP2.md; codes as grpc-go and grpc-java
/// give them), shared by native gRPC (`GRPCServerHandler`) and gRPC-Web (`GRPCWeb`) so both
/// refuse the same requests with the same words.
extension GRPCStatus {
    static func unknownMethod(_ path: String) -> GRPCStatus {
        GRPCStatus(code: .unimplemented, message: "unknown method \(path)", exception: nil)
    }

    /// compression.md: an encoding the server does not support is UNIMPLEMENTED.
    static func unsupportedEncoding(_ encoding: String) -> GRPCStatus {
        GRPCStatus(code: .unimplemented, message: "grpc-encoding \(encoding) is not supported; use identity", exception: nil)
    }

    /// A tenant or credentials given twice: refused rather than resolved (`RESTChecks.singleHeaders`),
    /// as REST refuses it (400 `ValidationException`).
    static func repeatedHeader(_ name: String) -> GRPCStatus {
        GRPCStatus(code: .invalidArgument, message: "the \(name) header must be given at most once",
                   exception: "ValidationException")
    }

    static let malformedTimeout = GRPCStatus(code: .invalidArgument, message: "malformed grpc-timeout", exception: nil)
    static let secondMessage = GRPCStatus(code: .internalError, message: "more than one request message for a unary call",
                                          exception: nil)
    static let compressedWithoutEncoding = GRPCStatus(code: .internalError,
                                                      message: "compressed message without a supported grpc-encoding",
                                                      exception: nil)
    /// A Compressed-Flag byte other than 0 or 1: malformed framing, INTERNAL like the other
    /// framing errors (grpc-go: "grpc: received unexpected payload format").
    static func badCompressedFlag(_ flag: UInt8) -> GRPCStatus {
        GRPCStatus(code: .internalError, message: "malformed message prefix: compressed flag \(flag) is neither 0 nor 1",
                   exception: nil)
    }

    static let endedInsideMessage = GRPCStatus(code: .internalError, message: "the request ended inside a message",
                                               exception: nil)
    static let endedWithoutMessage = GRPCStatus(code: .internalError, message: "the request ended without a message",
                                                exception: nil)

    static func messageTooLarge(_ length: UInt32, limit: Int) -> GRPCStatus {
        GRPCStatus(code: .resourceExhausted,
                   message: "request message of \(length) bytes is larger than the limit of \(limit)", exception: nil)
    }
}
