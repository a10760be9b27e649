import ContextModel
import NIOCore
import NIOHTTP1

/// Serves the REST API on one HTTP/1.1 connection.
///
/// NIO's `HTTPServerPipelineHandler` sits in front and hands over one request at a time,
/// holding pipelined requests back until this handler has ended the previous response, so
/// answers go out in request order (RFC 9112 §9.3.2) while the store works asynchronously.
final class CoreHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Collecting a body within the limit.
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The body went over the limit: the rest is read and dropped, then 413.
        case discarding(HTTPRequestHead)
        /// Answered 413 from the headers alone; the connection closes once that is written.
        case rejected
        /// The request is with the service; its answer has not been written yet.
        case waiting
    }

    private let service: ContextService
    private let maxBodyBytes: Int
    private let inFlight: InFlightCounter
    private var state = State.idle

    init(service: ContextService, inFlight: InFlightCounter) {
        self.service = service
        self.maxBodyBytes = service.configuration.limits.maxBytes
        self.inFlight = inFlight
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
                // Refuse before reading a byte of it: the client may be sending gigabytes.
                state = .rejected
                write(CoreResponse(.payloadTooLarge(limit: maxBodyBytes)), keepAlive: false, context: context)
                return
            }
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // curl and others wait for this before sending a body (RFC 9110 §10.1.1).
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                      promise: nil)
            }
            state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case .body(var chunk):
            switch state {
            case .receiving(let head, var body):
                if body.readableBytes + chunk.readableBytes > maxBodyBytes {
                    state = .discarding(head)
                } else {
                    state = .idle  // drop the reference so `body` grows in place
                    body.writeBuffer(&chunk)
                    state = .receiving(head, body)
                }
            default:
                break
            }
        case .end:
            switch state {
            case .receiving(let head, let body):
                state = .waiting
                dispatch(head, body, context: context)
            case .discarding(let head):
                state = .waiting
                write(CoreResponse(.payloadTooLarge(limit: maxBodyBytes)), keepAlive: head.isKeepAlive, context: context)
            case .rejected, .idle, .waiting:
                break
            }
        }
    }

    private func dispatch(_ head: HTTPRequestHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        let request = CoreRequest(
            method: head.method.rawValue,
            target: head.uri,
            contentType: head.headers.first(name: "content-type"),
            tenant: head.headers.first(name: "contactcenterid"),
            authorization: head.headers.first(name: "authorization"),
            body: Array(body.readableBytesView))
        let keepAlive = head.isKeepAlive
        let service = self.service
        let promise = context.eventLoop.makePromise(of: CoreResponse.self)
        inFlight.enter()
        promise.completeWithTask { await service.handle(request) }
        promise.futureResult.assumeIsolated().whenSuccess { response in
            self.inFlight.leave()
            self.write(response, keepAlive: keepAlive, context: context)
        }
    }

    private func write(_ response: CoreResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        if !response.body.isEmpty { headers.add(name: "content-type", value: "application/json") }
        headers.add(name: "content-length", value: String(response.body.count))
        if let location = response.location { headers.add(name: "location", value: location) }
        if let allow = response.allow { headers.add(name: "allow", value: allow.joined(separator: ", ")) }
        if let retryAfter = response.retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status),
                                    headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                          promise: nil)
        }
        let done = context.writeAndFlushPromise(wrapOutboundOut(.end(nil)))
        if case .waiting = state { state = .idle }
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise(_ data: NIOAny) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writeAndFlush(data, promise: promise)
        return promise.futureResult
    }
}

/// Answers a request NIO could not parse with a 400 in the contract's shape, then closes:
/// after a framing error nothing more on the connection can be trusted. Modelled on NIO's
/// `HTTPServerProtocolErrorHandler`, which answers with an empty body.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInProgress = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !responseInProgress {
            let body = ContextError.validation("malformed HTTP request: \(error)").jsonBody
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: String(body.count))
            headers.add(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))),
                          promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseInProgress = true
        case .end: responseInProgress = false
        default: break
        }
        context.write(data, promise: promise)
    }
}
