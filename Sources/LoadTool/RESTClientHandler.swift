import NIOCore
import NIOHTTP1

/// One REST client connection: HTTP/1.1 keep-alive with NIO's client codec, up to `--streams`
/// requests pipelined (answers come back in order, RFC 9112 §9.3.2). Everything on the
/// channel's event loop.
final class RESTClientHandler: ChannelDuplexHandler, CallTransport {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private struct Pending {
        let tag: Int
        let method: LoadMethod
        let sentAt: NIODeadline
    }

    private let content: RequestContent
    private unowned let sink: any CallSink
    private let allocator: ByteBufferAllocator
    private let baseHeaders: HTTPHeaders
    private var context: ChannelHandlerContext?
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    private var status = 0
    private var body: ByteBuffer?
    private var keepAlive = true
    private var startTask: (head: HTTPRequestHead, body: ByteBuffer)?
    private var inReadCycle = false
    private var flushScheduled = false
    private var closed = false
    private var timedOut = false
    private var sweep: RepeatedTask?

    init(content: RequestContent, sink: any CallSink, allocator: ByteBufferAllocator) {
        self.content = content
        self.sink = sink
        self.allocator = allocator
        var headers = HTTPHeaders()
        headers.add(name: "host", value: content.configuration.authority)
        headers.add(name: "user-agent", value: "cs-gateway-load/1")
        if let tenant = content.configuration.tenant { headers.add(name: "ContactCenterId", value: tenant) }
        baseHeaders = headers
    }

    // MARK: CallTransport

    var isUsable: Bool { !closed && context != nil }

    func prepareStartTask(serviceID: Int64) {
        let call = LoadCall(method: .startTask, serviceID: serviceID, step: -1)
        startTask = request(call)
    }

    private func request(_ call: LoadCall) -> (HTTPRequestHead, ByteBuffer) {
        let route = RESTCodec.route(call)
        var headers = baseHeaders
        var body = allocator.buffer(capacity: 0)
        if route.takesBody {
            let bytes = RESTCodec.body(members: content.rest(call), stateID: call.method == .startTask ? call.stateID : 0)
            body = allocator.buffer(capacity: bytes.count)
            body.writeBytes(bytes)
            headers.add(name: "content-type", value: "application/json")
        }
        if route.takesBody || route.method != "GET" { headers.add(name: "content-length", value: String(body.readableBytes)) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: route.method),
                                   uri: route.target(basePath: content.configuration.basePath), headers: headers)
        return (head, body)
    }

    func send(_ call: LoadCall, tag: Int) {
        guard let context, isUsable else {
            return failLater(tag, ErrorCode.connectionClosed, "connection closed")
        }
        let (head, body) = call.step < 0 ? (startTask ?? request(call)) : request(call)
        pending.append(Pending(tag: tag, method: call.method, sentAt: .now()))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        scheduleFlush()
    }

    func close() {
        guard !closed, let context else { return }
        context.close(promise: nil)
    }

    private func failLater(_ tag: Int, _ code: Int, _ message: String) {
        guard let context else { return }
        context.eventLoop.assumeIsolated().execute { self.sink.completed(tag: tag, outcome: .failed(code, message)) }
    }

    private func scheduleFlush() {
        guard !inReadCycle, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let timeout = content.configuration.timeout {
            // A pipelined connection cannot drop one late answer: past its deadline the oldest
            // call closes the connection, and every call behind it fails with it.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            sweep = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
                handler.value.expireDeadline(timeout)
            }
        }
    }

    private func expireDeadline(_ timeout: TimeAmount) {
        guard let first = pending.first, first.sentAt + timeout <= .now(), !closed else { return }
        timedOut = true
        context?.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadCycle = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
            body = nil
        case .body(var part):
            guard let first = pending.first, status >= 300 || first.method.createsResource else { return }
            if var collected = body {
                body = nil  // one owner while it grows
                collected.writeBuffer(&part)
                body = collected
            } else {
                body = part
            }
        case .end:
            guard let call = pending.popFirst() else {
                // An answer nobody asked for: the connection is out of step.
                closed = true
                context.close(promise: nil)
                return
            }
            sink.completed(tag: call.tag, outcome: outcome(call.method))
            body = nil
            if !keepAlive {
                closed = true
                context.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        sweep?.cancel()
        let code = timedOut ? ErrorCode.timeout : ErrorCode.connectionClosed
        let message = timedOut ? "no answer within the timeout: connection closed" : "connection closed"
        while let call = pending.popFirst() {
            sink.completed(tag: call.tag, outcome: .failed(code, message))
        }
        sink.transportClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// 2xx is success (201 for starts, 204 for ends, 200 for queries); a start must name its id.
    private func outcome(_ method: LoadMethod) -> CallOutcome {
        guard (200..<300).contains(status) else {
            let message = body.map { b in String(decoding: b.readableBytesView.prefix(300), as: UTF8.self) }
            return .failed(status, message)
        }
        guard let key = RESTCodec.idKey(method) else { return .ok(0) }
        let id = body?.withUnsafeReadableBytes { RESTCodec.integer(after: key, in: $0) }
        guard let id = id ?? nil else { return .failed(ErrorCode.badAnswer, "\(method) answered \(status) without an id") }
        return .ok(id)
    }
}
