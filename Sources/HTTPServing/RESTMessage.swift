import ContextModel
import NIOCore
import NIOHTTP1

/// One REST request, complete: what the contract reads of it, plus every header for the few
/// callers that need more (gRPC-Web, CORS).
public struct RESTRequest: Sendable {
    public var method: String
    /// Path and query, as in the request line (or HTTP/2 `:path`).
    public var target: String
    public var contentType: String?
    /// The `ContactCenterId` header (CONTEXT-SERVICES.md §6).
    public var tenant: String?
    public var authorization: String?
    /// A header of `RESTChecks.singleHeaders` the request carried more than once (its name as
    /// the contract spells it): such a request is refused, never resolved to one copy.
    public var repeatedHeader: String?
    /// As received: the slice of the read buffer it arrived in when it came in one read (no
    /// copy); handed on as it is (upstream, to the batch decoder, to the JSON reader).
    public var body: ByteBuffer
    /// Every header, names as received (HTTP/1.1) or lower-case (HTTP/2).
    public var headers: HTTPHeaders
    /// The `Idempotency-Key` header, as received (README, "Exactly once").
    public var idempotencyKey: String?
    /// The key was made by a gateway for its own resends, not by the client: the core keeps
    /// it minutes, not a day (batch items only).
    public var keyMadeByGateway: Bool
    /// Such a key, sent for the first time (`BatchItem.keyIsFresh`).
    public var keyIsFresh = false
    public init(method: String, target: String, contentType: String? = nil, tenant: String? = nil,
                authorization: String? = nil, repeatedHeader: String? = nil, body: ByteBuffer = ByteBuffer(),
                headers: HTTPHeaders = [:], idempotencyKey: String? = nil, keyMadeByGateway: Bool = false) {
        self.method = method
        self.target = target
        self.contentType = contentType
        self.tenant = tenant
        self.authorization = authorization
        self.repeatedHeader = repeatedHeader
        self.body = body
        self.headers = headers
        self.idempotencyKey = idempotencyKey
        self.keyMadeByGateway = keyMadeByGateway
    }

    /// A request whose body is a byte array (tests, in-process callers).
    public init(method: String, target: String, contentType: String? = nil, tenant: String? = nil,
                authorization: String? = nil, repeatedHeader: String? = nil, body: [UInt8],
                headers: HTTPHeaders = [:], idempotencyKey: String? = nil, keyMadeByGateway: Bool = false) {
        self.init(method: method, target: target, contentType: contentType, tenant: tenant, authorization: authorization,
                  repeatedHeader: repeatedHeader, body: ByteBuffer(bytes: body), headers: headers,
                  idempotencyKey: idempotencyKey, keyMadeByGateway: keyMadeByGateway)
    }

    /// A request from its head and body, the contract's headers picked out.
    public init(head: HTTPRequestHead, body: ByteBuffer) {
        self.init(method: head.method.rawValue, target: head.uri,
                  contentType: head.headers.first(name: "content-type"),
                  tenant: head.headers.first(name: "contactcenterid"),
                  authorization: head.headers.first(name: "authorization"),
                  repeatedHeader: RESTChecks.singleHeaders.first { head.headers[$0].count > 1 },
                  body: body, headers: head.headers, idempotencyKey: head.headers.first(name: "idempotency-key"))
    }

    /// Safe methods (RFC 9110 §9.2.1): pipelined ones may run concurrently.
    public var isSafe: Bool { method == "GET" || method == "HEAD" || method == "OPTIONS" }
}

/// One REST answer.
public struct RESTResponse: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public var status: Int
    public var location: String?
    /// For 405: the methods the path allows.
    public var allow: [String]?
    /// For 429/503: seconds to wait before coming back.
    public var retryAfter: Int?
    /// JSON, or empty (204, and the 200 of Delete Service); a batch answer's bytes. Written
    /// to the connection as it is (no copy).
    public var body: ByteBuffer
    /// The body's media type; nil is `application/json`.
    public var contentType: String?
    /// Any other header (CORS, gRPC-Web), lower-case names.
    public var headers: [Field]

    public init(status: Int, location: String? = nil, allow: [String]? = nil, retryAfter: Int? = nil,
                body: ByteBuffer = ByteBuffer(), contentType: String? = nil, headers: [Field] = []) {
        self.status = status
        self.location = location
        self.allow = allow
        self.retryAfter = retryAfter
        self.body = body
        self.contentType = contentType
        self.headers = headers
    }

    /// An answer whose body was written as a byte array.
    public init(status: Int, location: String? = nil, allow: [String]? = nil, retryAfter: Int? = nil, body: [UInt8],
                contentType: String? = nil, headers: [Field] = []) {
        self.init(status: status, location: location, allow: allow, retryAfter: retryAfter, body: ByteBuffer(bytes: body),
                  contentType: contentType, headers: headers)
    }

    /// The body's bytes as an array (tests, diagnostics).
    public var bodyBytes: [UInt8] { Array(body.readableBytesView) }

    /// An error answer; load shedding (429, 503) always says when to come back (§5).
    public init(_ error: ContextError, allow: [String]? = nil, retryAfter: Int? = nil) {
        let shed = error.status == 429 || error.status == 503
        self.init(status: error.status, allow: allow, retryAfter: retryAfter ?? (shed ? 1 : nil), body: error.jsonBody)
    }

    /// The answer to a request whose route did not parse: 404, 400, or 405 with `Allow`
    /// (the core and the gateway's REST side answer these alike).
    public init(_ error: RouteError, method: String, target: String) {
        let path = String(target.prefix { $0 != "?" })
        if case .methodNotAllowed(let allowed) = error {
            self.init(error.contextError(method: method, path: path), allow: allowed)
        } else {
            self.init(error.contextError(method: method, path: path))
        }
    }

    /// `Idempotent-Replayed: true`: the answer stored under the request's idempotency key,
    /// given again (README, "Exactly once").
    public static let replayedHeader = Field("idempotent-replayed", "true")

    public var isReplay: Bool { headers.contains { $0.name == Self.replayedHeader.name } }

    /// The header fields of this answer in the order they are written, without framing
    /// (`content-length`, `connection`): shared by the HTTP/1.1 and HTTP/2 writers so both
    /// answer with the same headers.
    public func forEachHeader(_ body: (String, String) -> Void) {
        if self.body.readableBytes > 0 { body("content-type", contentType ?? "application/json") }
        if let location { body("location", location) }
        if let allow { body("allow", allow.joined(separator: ", ")) }
        if let retryAfter { body("retry-after", String(retryAfter)) }
        for field in headers { body(field.name, field.value) }
    }
}

/// What answers REST requests on a connection: the core's service, or the gateway's bridge.
/// `respond` is called on the connection's event loop, and its future must complete on it.
public protocol RESTResponder: Sendable {
    /// The largest body accepted for a request with this method and target, and the answer
    /// given when a body is larger.
    func bodyLimit(method: String, target: String) -> (limit: Int, tooLarge: RESTResponse)
    /// The answer to a complete request.
    func respond(to request: RESTRequest, eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse>
    /// Whether a request takes a slot of the event loop's admission control
    /// (`LoopAdmission`): those answered at once (health, the API document, CORS preflight)
    /// do not, so they are answered even while calls for the core wait.
    func needsAdmission(method: String, target: String) -> Bool
}

extension RESTResponder {
    public func needsAdmission(method: String, target: String) -> Bool { true }
}
