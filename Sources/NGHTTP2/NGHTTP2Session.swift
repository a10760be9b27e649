internal import CNghttp2
import NIOCore

/// Receives what an nghttp2 session parses. Called synchronously from inside
/// `NGHTTP2Session.receive`, on the connection's event loop. Raw buffers are valid only for
/// the duration of the call; a DATA chunk comes as a `ByteBuffer` that may be kept.
package protocol NGHTTP2SessionDelegate: AnyObject {
    /// A HEADERS frame opened a stream (server: a request; client: a response).
    func streamOpened(_ streamID: Int32)
    /// A SETTINGS frame arrived (`isAck`: the peer acknowledging ours).
    func settingsReceived(_ isAck: Bool)
    func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool)
    /// A header block of `streamID` went over the limits: the stream is being reset and no more
    /// of the block arrives. `connectionEnding` when this one ended the connection (GOAWAY).
    func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool)
    /// All header frames of a block arrived; `endStream` when the block ended the stream.
    func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool)
    /// A chunk of a DATA frame's payload: a slice of the buffer given to `receive` (its
    /// storage, not a copy: keeping it keeps that whole buffer alive), or, should nghttp2 ever
    /// hand over bytes from elsewhere, a copy of them.
    func data(_ streamID: Int32, _ chunk: ByteBuffer)
    /// A DATA frame ended the stream.
    func dataEndedStream(_ streamID: Int32)
    /// The stream is gone: `errorCode` 0 after a normal end, else the RST_STREAM / GOAWAY code.
    func streamClosed(_ streamID: Int32, errorCode: UInt32)
    /// Client only: the body to send on a stream, pulled by nghttp2 as flow control allows.
    /// Copy at most `into.count` bytes and report whether the body is complete.
    func readBody(_ streamID: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool)
    /// Server only: the response body, pulled by nghttp2 as flow control allows, without
    /// copying it into nghttp2's frame buffer (`NGHTTP2_DATA_FLAG_NO_COPY`): how many of its
    /// bytes (at most `max`) the next DATA frame carries, and whether they complete the body.
    /// Nothing is taken yet: `writeBody` writes them, once the frame goes out.
    func bodyChunk(_ streamID: Int32, max: Int) -> (count: Int, done: Bool)
    /// Server only: appends the next `count` bytes of the stream's response body (those
    /// `bodyChunk` announced) to `output`, behind their DATA frame's header, and lets them go.
    /// False when the body no longer has them: the stream is then reset.
    func writeBody(_ streamID: Int32, count: Int, into output: inout ByteBuffer) -> Bool
    /// A frame left: `endStream` when it ended our side of the stream.
    func frameSent(_ streamID: Int32, endStream: Bool)
    /// Server only: the response body is complete. Return true after submitting trailers
    /// (gRPC always ends a response with them); false ends the stream with the last DATA
    /// frame (a plain HTTP answer: REST, gRPC-Web).
    func bodyComplete(_ streamID: Int32) -> Bool
}

/// HTTP/2 settings we announce, with their documented defaults.
public struct HTTP2Settings: Sendable, Equatable {
    /// Streams a client may have open at once on one connection (RFC 9113 §6.5.2). Each may
    /// be a call in flight whose answer (up to megabytes for a query) is being built, so this
    /// bounds what one connection can have the gateway and core work on at once; clients
    /// queue further calls themselves. 256: about Go's 250, twice nginx's 128.
    public var maxConcurrentStreams: UInt32 = 256
    /// Per-stream receive window: 1 MiB, so a 4 MiB message needs four round trips of
    /// WINDOW_UPDATE rather than 64 at the protocol's 64 KiB default.
    public var initialWindowSize: UInt32 = 1 << 20
    /// Connection receive window: room for many streams' messages at once.
    public var connectionWindowSize: UInt32 = 16 << 20
    /// Largest header block we accept, decoded, RFC 9113 §10.5.1 accounting (grpc-core's
    /// default is 8 KiB). nghttp2 only announces it; `HeaderListBudget` enforces it: the
    /// stream of a larger block is reset (ENHANCE_YOUR_CALM, which gRPC clients report as
    /// RESOURCE_EXHAUSTED) without the rest of the block being delivered.
    public var maxHeaderListSize: UInt32 = 16 << 10
    /// Most fields in one header block (not announced: HTTP/2 has no setting for it); more is
    /// refused as an over-large block.
    public var maxHeaderFields: Int = 256
    /// Refused header blocks tolerated per connection; the next one gets GOAWAY
    /// ENHANCE_YOUR_CALM and the connection closes.
    public var maxRefusedHeaderBlocks: Int = 4
    public var maxFrameSize: UInt32 = 16_384
    /// Manual flow control (server): received DATA gets its window back only when the owner
    /// calls `consume` (`nghttp2_option_set_no_auto_window_update`), so a peer can never have
    /// more than the windows unconsumed. Off: nghttp2 gives it back on receipt.
    public var manualWindowUpdates = false

    public init() {}
    public static var defaults: HTTP2Settings { HTTP2Settings() }
}

/// One nghttp2 session (server or client) driven through memory buffers: bytes in with
/// `receive`, bytes out with `drainOutput`. The only place that sees nghttp2's pointers and
/// C callbacks (STYLE.md: C interop kept at the edge). Not thread-safe: use it on one event loop.
package final class NGHTTP2Session {
    package enum Role { case server, client }

    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "nghttp2: \(String(cString: nghttp2_strerror(code)))" }
    }

    private var session: OpaquePointer?
    unowned let delegate: any NGHTTP2SessionDelegate
    package let role: Role
    /// The header block being received (blocks never interleave: RFC 9113 §6.10).
    private var headerBudget: HeaderListBudget
    private var refusedBlocks: OversizedHeaderStrikes
    /// Header blocks refused on this connection (over the list size or field count).
    package private(set) var refusedHeaderBlocks = 0
    /// Set once too many blocks were refused: GOAWAY ENHANCE_YOUR_CALM is queued and the
    /// session ends once it is sent.
    package private(set) var terminatedForHeaders = false
    /// The buffer being fed to nghttp2, and the address of its readable bytes, during
    /// `receive` only: `on_data_chunk_recv` points into it, so a chunk is handed on as a slice
    /// of it rather than copied. Nil outside `receive`, so that the session never keeps a read
    /// buffer alive.
    private var input: ByteBuffer?
    private var inputBase: UnsafeRawPointer?
    /// The buffer `drainOutput` fills, held here while it runs (moved in and out: one
    /// reference, so it grows in place) so that a server's DATA frames are written straight
    /// into it (`sendData`); empty outside `drainOutput`. Past `outputLimit`, DATA waits.
    private var output = ByteBuffer()
    private var outputLimit = Int.max

    package init(role: Role, delegate: any NGHTTP2SessionDelegate, settings: HTTP2Settings) throws {
        self.role = role
        self.delegate = delegate
        headerBudget = HeaderListBudget(maxBytes: Int(settings.maxHeaderListSize), maxFields: settings.maxHeaderFields)
        refusedBlocks = OversizedHeaderStrikes(tolerated: settings.maxRefusedHeaderBlocks)
        var ptr: OpaquePointer?
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        if settings.manualWindowUpdates {
            nghttp2_option_set_no_auto_window_update(option, 1)
        }
        let userData = Unmanaged.passUnretained(self).toOpaque()
        let rc = role == .server
            ? nghttp2_session_server_new2(&ptr, Callbacks.shared.pointer, userData, option)
            : nghttp2_session_client_new2(&ptr, Callbacks.shared.pointer, userData, option)
        guard rc == 0, let ptr else { throw Failure(code: rc) }
        session = ptr

        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: settings.maxFrameSize),
        ]
        try check(nghttp2_submit_settings(ptr, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count))
        if settings.connectionWindowSize > 65_535 {
            try check(nghttp2_session_set_local_window_size(ptr, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                                                            Int32(clamping: settings.connectionWindowSize)))
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    private func check(_ rc: Int32) throws {
        if rc != 0 { throw Failure(code: rc) }
    }

    /// Feeds received bytes. A thrown error is fatal to the connection: nghttp2 has queued a
    /// GOAWAY where the protocol wants one, so drain the output, then close. DATA payloads
    /// reach the delegate as slices of `buffer` (no copy).
    package func receive(_ buffer: ByteBuffer) throws {
        guard buffer.readableBytes > 0 else { return }
        input = buffer
        defer {
            input = nil
            inputBase = nil
        }
        let n = buffer.withUnsafeReadableBytes { bytes in
            inputBase = UnsafeRawPointer(bytes.baseAddress!)
            return nghttp2_session_mem_recv(session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        if n < 0 { throw Failure(code: Int32(n)) }
    }

    /// `count` bytes at `start`, which nghttp2 handed to a data callback: a slice of the
    /// input when they lie inside it (always, in nghttp2 1.52: `on_data_chunk_recv` points
    /// into what `mem_recv` was given), else a copy.
    private func chunk(_ start: UnsafePointer<UInt8>?, _ count: Int) -> ByteBuffer {
        guard count > 0, let start else { return ByteBuffer() }
        let raw = UnsafeRawPointer(start)
        if let input, let inputBase, raw >= inputBase, raw + count <= inputBase + input.readableBytes,
           let slice = input.getSlice(at: input.readerIndex + inputBase.distance(to: raw), length: count) {
            return slice
        }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: raw, count: count))
    }

    /// Appends every frame nghttp2 has ready to `buffer`.
    /// Appends what nghttp2 has ready to send, stopping once `buffer` holds `limit` bytes or
    /// more (the rest stays queued in nghttp2, and response bodies unread in their providers,
    /// until the next call): a socket the peer does not drain never makes nghttp2 empty every
    /// body it may send into memory at once.
    ///
    /// Frames other than a server's DATA are serialized by nghttp2 into its own buffer and
    /// copied here; a server's DATA frames (`NGHTTP2_DATA_FLAG_NO_COPY`, which
    /// `nghttp2_session_mem_send` honours: nghttp2 1.52 `session.c`, `NGHTTP2_OB_SEND_NO_COPY`)
    /// are written into `buffer` by `sendData` during `mem_send`, header then payload straight
    /// from the stream's body: the payload is copied once, not into nghttp2's frame buffer and
    /// then out of it (gateway/bench/copies.md, R5 and R6).
    package func drainOutput(into buffer: inout ByteBuffer, limit: Int = .max) throws {
        swap(&output, &buffer)
        outputLimit = limit
        defer {
            swap(&output, &buffer)
            outputLimit = .max
        }
        while output.readableBytes < limit {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { throw Failure(code: Int32(n)) }
            // 0: nothing more, or a DATA frame waits for the next call (`sendData` past the limit).
            guard n > 0, let data else { return }
            output.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
    }

    /// nghttp2 has something to send now (frames queued, or a body with window to send in).
    package var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    /// Both sides are done (GOAWAY exchanged, no streams): the connection can close.
    package var isFinished: Bool {
        nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    // MARK: Submitting

    /// Response or request headers, with a body pulled through the delegate when `hasBody`.
    /// Server: a response on `streamID`. Client: a new request; returns its stream id.
    @discardableResult
    package func submitHeaders(streamID: Int32, _ headers: HeaderBlock, hasBody: Bool) throws -> Int32 {
        var provider = nghttp2_data_provider()
        provider.read_callback = Callbacks.readBody
        return try headers.withNV { nv, count in
            try withUnsafePointer(to: &provider) { providerPointer in
                let body = hasBody ? providerPointer : nil
                switch role {
                case .server:
                    try check(nghttp2_submit_response(session, streamID, nv, count, body))
                    return streamID
                case .client:
                    let id = nghttp2_submit_request(session, nil, nv, count, body, nil)
                    if id < 0 { throw Failure(code: id) }
                    return id
                }
            }
        }
    }

    /// A trailer block that ends the stream (gRPC's status).
    package func submitTrailers(streamID: Int32, _ trailers: HeaderBlock) throws {
        try trailers.withNV { nv, count in
            try check(nghttp2_submit_trailer(session, streamID, nv, count))
        }
    }

    /// Resumes a body whose `readBody` said "nothing yet" (nghttp2 deferred it). Live: a
    /// message stream's response (server reflection) is deferred between answers whenever the
    /// client sends its next request only once the previous one is answered, as grpcurl does
    /// (GRPCMessageStreamTests.nextMessageAfterAnswer, test_reflection.py).
    package func resumeBody(streamID: Int32) {
        nghttp2_session_resume_data(session, streamID)
    }

    package func submitReset(streamID: Int32, errorCode: UInt32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// RFC 9113 §6.8: a GOAWAY with the highest stream id, telling the client to open no new
    /// streams while those in flight finish.
    package func submitShutdownNotice() {
        nghttp2_submit_shutdown_notice(session)
    }

    /// The final GOAWAY: streams above the last one processed are refused.
    package func submitGoAway(errorCode: UInt32 = 0) {
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue),
                              nghttp2_session_get_last_proc_stream_id(session), errorCode, nil, 0)
    }

    /// With `manualWindowUpdates`: `count` bytes of `streamID` (delivered through `data`) are
    /// no longer buffered; their window goes back to the peer (stream and connection), in a
    /// WINDOW_UPDATE once half a window is due. A closed stream's bytes count for the
    /// connection alone.
    package func consume(streamID: Int32, _ count: Int) {
        guard count > 0 else { return }
        nghttp2_session_consume(session, streamID, count)
    }

    /// GOAWAY with `errorCode` and the last stream processed; the session ends once it is sent.
    package func terminate(errorCode: UInt32) {
        nghttp2_session_terminate_session(session, errorCode)
    }

    /// A header block went over `maxHeaderListSize` or `maxHeaderFields`: its stream is reset
    /// with ENHANCE_YOUR_CALM (the RST submitted here is the one nghttp2 sends) and nghttp2
    /// delivers nothing more of the block (h:1744). Too many on one connection: GOAWAY
    /// ENHANCE_YOUR_CALM, and the session ends once that is sent.
    private func refuseHeaderBlock(streamID: Int32) -> Int32 {
        refusedHeaderBlocks += 1
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID,
                                  NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        if refusedBlocks.strike() && !terminatedForHeaders {
            terminatedForHeaders = true
            nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        }
        delegate.headerBlockRefused(streamID, connectionEnding: terminatedForHeaders)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
    }

    // MARK: C callbacks

    /// The callback table, built once. Its pointer is immutable after construction and
    /// nghttp2 only reads it, so sharing it across event loops is safe.
    private final class Callbacks: @unchecked Sendable {
        static let shared = Callbacks()
        let pointer: OpaquePointer

        private init() {
            var cbs: OpaquePointer?
            nghttp2_session_callbacks_new(&cbs)
            nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, Callbacks.beginHeaders)
            nghttp2_session_callbacks_set_on_header_callback(cbs, Callbacks.onHeader)
            nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Callbacks.frameReceived)
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Callbacks.dataChunk)
            nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Callbacks.streamClose)
            nghttp2_session_callbacks_set_on_frame_send_callback(cbs, Callbacks.frameSent)
            nghttp2_session_callbacks_set_send_data_callback(cbs, Callbacks.sendData)
            pointer = cbs!
        }

        static func owner(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
            Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
        }

        static let beginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
            let frame = frame!
            owner(userData).headerBudget.reset()
            if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
               frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST || frame.pointee.headers.cat == NGHTTP2_HCAT_RESPONSE {
                owner(userData).delegate.streamOpened(frame.pointee.hd.stream_id)
            }
            return 0
        }

        static let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
            let frame = frame!
            guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            let owner = owner(userData)
            guard owner.headerBudget.admit(nameLength: nameLength, valueLength: valueLength) else {
                return owner.refuseHeaderBlock(streamID: frame.pointee.hd.stream_id)
            }
            owner.delegate.header(
                frame.pointee.hd.stream_id,
                name: UnsafeRawBufferPointer(start: name, count: nameLength),
                value: UnsafeRawBufferPointer(start: value, count: valueLength),
                isTrailer: frame.pointee.headers.cat == NGHTTP2_HCAT_HEADERS)
            return 0
        }

        static let frameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
            let frame = frame!
            let endStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            let delegate = owner(userData).delegate
            switch UInt32(frame.pointee.hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                delegate.headersComplete(frame.pointee.hd.stream_id,
                                         isTrailer: frame.pointee.headers.cat == NGHTTP2_HCAT_HEADERS,
                                         endStream: endStream)
            case NGHTTP2_DATA.rawValue where endStream:
                delegate.dataEndedStream(frame.pointee.hd.stream_id)
            case NGHTTP2_SETTINGS.rawValue:
                delegate.settingsReceived(frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0)
            default:
                break
            }
            return 0
        }

        static let frameSent: nghttp2_on_frame_send_callback = { _, frame, userData in
            let frame = frame!
            let type = UInt32(frame.pointee.hd.type)
            if type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue {
                owner(userData).delegate.frameSent(
                    frame.pointee.hd.stream_id,
                    endStream: frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
            }
            return 0
        }

        static let dataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
            let session = owner(userData)
            session.delegate.data(streamID, session.chunk(data, length))
            return 0
        }

        static let streamClose: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
            owner(userData).delegate.streamClosed(streamID, errorCode: errorCode)
            return 0
        }

        static let readBody: nghttp2_data_source_read_callback = { _, streamID, buf, length, flags, _, userData in
            let session = owner(userData)
            let count: Int, done: Bool
            switch session.role {
            case .server:
                // nghttp2 frames the bytes (flow control, padding) without copying them into
                // `buf`: `sendData` writes them straight into the output.
                (count, done) = session.delegate.bodyChunk(streamID, max: length)
                if count > 0 { flags!.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue }
            case .client:
                (count, done) = session.delegate.readBody(streamID, into: UnsafeMutableRawBufferPointer(start: buf, count: length))
            }
            if done {
                flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                if session.role == .server, session.delegate.bodyComplete(streamID) {
                    // gRPC: a response body never ends the stream; the trailers do
                    // (PROTOCOL-HTTP2.md). A request's last DATA frame ends it, and so does a
                    // plain HTTP answer's.
                    flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                }
            } else if count == 0 {
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
            return count
        }

        /// A DATA frame read with `NGHTTP2_DATA_FLAG_NO_COPY`, written whole (nghttp2.h,
        /// `nghttp2_send_data_callback`): the 9-byte header, the pad length byte if padded, the
        /// `length` bytes of the body, the padding. Past the output limit it waits
        /// (WOULDBLOCK: nghttp2 calls again with the same frame, and `mem_send` returns 0).
        static let sendData: nghttp2_send_data_callback = { _, frame, header, length, _, userData in
            let session = owner(userData)
            let frame = frame!
            guard session.output.readableBytes < session.outputLimit else {
                return NGHTTP2_ERR_WOULDBLOCK.rawValue
            }
            let padding = frame.pointee.data.padlen
            let start = session.output.writerIndex
            session.output.reserveCapacity(minimumWritableBytes: 9 + padding + length)
            session.output.writeBytes(UnsafeRawBufferPointer(start: header, count: 9))
            if padding > 0 { session.output.writeInteger(UInt8(truncatingIfNeeded: padding - 1)) }
            guard session.delegate.writeBody(frame.pointee.hd.stream_id, count: length, into: &session.output) else {
                session.output.moveWriterIndex(to: start)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
            }
            if padding > 1 { session.output.writeRepeatingByte(0, count: padding - 1) }
            return 0
        }
    }
}

/// A list of header fields ready for nghttp2, stored contiguously so that building one costs
/// one allocation and nghttp2 copies from it once. Public for clients outside this module (the
/// load tool builds one per RPC method, once).
public struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var fields: [(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int)] = []

    /// Allocates nothing until the first `add`: every gRPC stream has an (often unused)
    /// trailer block.
    public init() {}

    public init(_ pairs: [(String, String)]) {
        self.init()
        for (n, v) in pairs { add(n, v) }
    }

    public mutating func add(_ name: String, _ value: String) {
        if fields.isEmpty {
            bytes.reserveCapacity(128)
            fields.reserveCapacity(6)
        }
        let ns = bytes.count
        bytes.append(contentsOf: name.utf8)
        let vs = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((ns, vs - ns, vs, bytes.count - vs))
    }

    public var isEmpty: Bool { fields.isEmpty }

    /// Name-value pairs as Strings (tests, logs).
    public var pairs: [(String, String)] {
        fields.map {
            (String(decoding: bytes[$0.nameStart..<($0.nameStart + $0.nameLength)], as: UTF8.self),
             String(decoding: bytes[$0.valueStart..<($0.valueStart + $0.valueLength)], as: UTF8.self))
        }
    }

    func withNV<T>(_ body: (UnsafePointer<nghttp2_nv>, Int) throws -> T) throws -> T {
        try bytes.withUnsafeBufferPointer { raw in
            let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            // On the stack for the few fields of an answer: no array per submitted block.
            return try withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(fields.count, 1)) { nv in
                for (i, f) in fields.enumerated() {
                    (nv.baseAddress! + i).initialize(to: nghttp2_nv(
                        name: base + f.nameStart, value: base + f.valueStart,
                        namelen: f.nameLength, valuelen: f.valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
                }
                return try body(nv.baseAddress!, fields.count)
            }
        }
    }
}

// MARK: Client

/// What an `HTTP2ClientSession` reports, called synchronously from inside `receive` and
/// `drainOutput`, on the connection's event loop. Raw buffers are valid only for the call.
public protocol HTTP2ClientSessionDelegate: AnyObject {
    /// A response header (`isTrailer` false) or trailer field (true) of `streamID`.
    func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool)
    /// A chunk of a DATA frame's payload, a slice of the buffer given to `receive` (no copy;
    /// keeping it keeps that buffer alive).
    func data(_ streamID: Int32, _ chunk: ByteBuffer)
    /// The stream is gone: `errorCode` 0 after a normal end, else the RST_STREAM / GOAWAY code.
    func streamClosed(_ streamID: Int32, errorCode: UInt32)
    /// The request body, pulled by nghttp2 as flow control allows: copy at most `into.count`
    /// bytes; `done` ends the stream with that DATA frame.
    func readBody(_ streamID: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool)
}

/// The client role of `NGHTTP2Session` for other modules (the load tool), so that clients and
/// the gateway share one nghttp2 edge. A wrapper rather than a public `NGHTTP2SessionDelegate`
/// (a package protocol): its requirements would become public API of `GRPCServerHandler` too.
/// Not thread-safe: use it on one event loop.
public final class HTTP2ClientSession: NGHTTP2SessionDelegate {
    private unowned let delegate: any HTTP2ClientSessionDelegate
    // Set once in init; nil only while `self` is being built (the session needs `self`).
    private var session: NGHTTP2Session!

    /// A client session; its connection preface and SETTINGS wait in the output.
    public init(delegate: any HTTP2ClientSessionDelegate, settings: HTTP2Settings = .defaults) throws {
        self.delegate = delegate
        session = try NGHTTP2Session(role: .client, delegate: self, settings: settings)
    }

    /// Feeds received bytes. A thrown error is fatal to the connection.
    public func receive(_ buffer: ByteBuffer) throws {
        try session.receive(buffer)
    }

    /// Appends every frame nghttp2 has ready to `buffer`.
    public func drainOutput(into buffer: inout ByteBuffer) throws {
        try session.drainOutput(into: &buffer)
    }

    /// A new request; returns its stream id. With `hasBody`, the body is pulled through
    /// `readBody`. Beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS nghttp2 queues it.
    public func submitRequest(_ headers: HeaderBlock, hasBody: Bool) throws -> Int32 {
        try session.submitHeaders(streamID: -1, headers, hasBody: hasBody)
    }

    /// RST_STREAM (RFC 9113 §6.4), e.g. CANCEL (8) when a deadline passed.
    public func submitReset(streamID: Int32, errorCode: UInt32) {
        session.submitReset(streamID: streamID, errorCode: errorCode)
    }

    /// GOAWAY before closing the connection (RFC 9113 §6.8).
    public func submitGoAway() {
        session.submitGoAway()
    }

    /// Both sides are done (GOAWAY exchanged, no streams): the connection can close.
    public var isFinished: Bool { session.isFinished }

    // NGHTTP2SessionDelegate: forwarded, minus what only a server needs.
    package func streamOpened(_ streamID: Int32) {}
    package func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {
        delegate.header(streamID, name: name, value: value, isTrailer: isTrailer)
    }
    package func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool) {}
    package func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool) {}
    package func settingsReceived(_ isAck: Bool) {}
    package func data(_ streamID: Int32, _ chunk: ByteBuffer) { delegate.data(streamID, chunk) }
    package func dataEndedStream(_ streamID: Int32) {}
    package func streamClosed(_ streamID: Int32, errorCode: UInt32) { delegate.streamClosed(streamID, errorCode: errorCode) }
    package func readBody(_ streamID: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
        delegate.readBody(streamID, into: into)
    }
    // A client's request bodies are copied (`readBody`): never called for a client.
    package func bodyChunk(_ streamID: Int32, max: Int) -> (count: Int, done: Bool) { (0, true) }
    package func writeBody(_ streamID: Int32, count: Int, into output: inout ByteBuffer) -> Bool { false }
    package func frameSent(_ streamID: Int32, endStream: Bool) {}
    package func bodyComplete(_ streamID: Int32) -> Bool { false }  // never called for a client
}
