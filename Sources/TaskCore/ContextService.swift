import ContextModel
internal import Crypto
import HTTPServing
import NIOConcurrencyHelpers
import Logging
import NIOCore

#if canImport(Glibc)
internal import Glibc
#endif

/// The core speaks the REST messages of `HTTPServing`, shared with the gateway's REST side.
public typealias CoreRequest = RESTRequest
public typealias CoreResponse = RESTResponse

/// The Context Services operations of §2 over a `TaskStore`: parses the route, checks
/// credentials, tenant and content type, validates the body, runs the store, and shapes the
/// answer (codes, `Location`, bodies, errors of §5).
public final class ContextService: Sendable {
    public let store: any TaskStore
    public let configuration: CoreConfiguration
    private let clock: @Sendable () -> Timestamp
    let logger: Logger
    /// nil: no metrics (README, "Metrics").
    let metrics: CoreMetrics?
    /// Idempotency keys whose writes are with the store right now (this process): another
    /// call with one of them gets 409 at once (README, "Exactly once").
    private let keysInFlight = NIOLockedValueBox(Set<KeyInFlight>())

    private struct KeyInFlight: Hashable {
        var tenant: String
        var key: String
    }

    public init(
        store: any TaskStore, configuration: CoreConfiguration = .defaults,
        logger: Logger = Logger(label: "cs.core"),
        clock: @escaping @Sendable () -> Timestamp = ContextService.systemClock,
        metrics: CoreMetrics? = nil
    ) {
        self.metrics = metrics
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    /// Wall-clock time, truncated to milliseconds.
    public static let systemClock: @Sendable () -> Timestamp = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    public func handle(_ request: CoreRequest) async -> CoreResponse {
        if isBatchPath(request.target) {
            return await handleBatch(request)  // the batch extension (ContextService+Batch.swift)
        }
        if isStorePath(request.target) {
            return storeAnswer(request)
        }
        if OpenAPIDocument.isPath(request.target, basePath: configuration.basePath) {
            return OpenAPIDocument.response(method: request.method, target: request.target)
        }
        switch prepare(request) {
        case .respond(let response):
            return response
        case .write(let command, let route, let claim):
            return await execute(writes: [(command, route, claim)])[0]
        case .read(let route, let tenant):
            return await execute(read: route, tenant: tenant)
        }
    }

    /// A request once routed and checked, before the store sees it. Single calls and batch
    /// items share this step, so an item is answered exactly as its single call would be.
    enum Prepared {
        /// Answered without the store (a refusal).
        case respond(CoreResponse)
        /// A write: its command, body validated, and its idempotency key if it has one.
        case write(WriteCommand, RESTRoute, IdempotencyClaim?)
        /// A read.
        case read(RESTRoute, tenant: String)
    }

    /// Route, credentials, tenant, content type, body: everything but the store.
    func prepare(_ request: CoreRequest) -> Prepared {
        switch RESTRoute.parse(method: request.method, target: request.target, basePath: configuration.basePath) {
        case .success(let route):
            return prepare(route, request)
        case .failure(let error):
            return .respond(CoreResponse(error, method: request.method, target: request.target))
        }
    }

    /// Credentials, tenant, content type, body of a request whose route is known (a batch
    /// item's comes typed): `request`'s method and target are not read.
    func prepare(_ route: RESTRoute, _ request: CoreRequest) -> Prepared {
        do throws(ContextError) {
            try RESTChecks.notRepeated(request.repeatedHeader)
            try authorize(request.authorization)
            let tenant = try Self.tenant(request.tenant)
            if let command = try command(for: route, tenant: tenant, request: request) {
                return .write(command, route, try claim(request, route: route, tenant: tenant))
            }
            return .read(route, tenant: tenant)
        } catch {
            return .respond(CoreResponse(error))
        }
    }

    /// Runs prepared writes as one `store.write` call (one transaction, one commit) and
    /// answers each. If the store itself fails, every one of them gets that failure: none
    /// was applied. A write whose key another call of this process is running gets 409 and
    /// does not go to the store.
    func execute(writes: [(command: WriteCommand, route: RESTRoute, claim: IdempotencyClaim?)]) async -> [CoreResponse] {
        var busy = Set<Int>()
        var taken: [KeyInFlight] = []
        if writes.contains(where: { $0.claim != nil }) {
            keysInFlight.withLockedValue { inFlight in
                var mine = Set<KeyInFlight>()  // the same key twice in one group is the store's (a replay)
                for (i, write) in writes.enumerated() {
                    guard let claim = write.claim else { continue }
                    let key = KeyInFlight(tenant: claim.tenant, key: claim.key)
                    if mine.contains(key) { continue }
                    if inFlight.contains(key) {
                        busy.insert(i)
                    } else {
                        inFlight.insert(key)
                        mine.insert(key)
                        taken.append(key)
                    }
                }
            }
        }
        defer {
            if !taken.isEmpty { keysInFlight.withLockedValue { $0.subtract(taken) } }
        }
        let sent = writes.indices.filter { !busy.contains($0) }
        var responses = [CoreResponse](repeating: CoreResponse(.idempotencyKeyInProgress()), count: writes.count)
        guard !sent.isEmpty else { return responses }
        let replies: [WriteReply]
        let started = NIODeadline.now().uptimeNanoseconds
        do {
            replies = try await store.write(sent.map { WriteRequest(writes[$0].command, claim: writes[$0].claim) })
            metrics?.wrote(writes: sent.count, nanos: Int64(NIODeadline.now().uptimeNanoseconds &- started), committed: true)
        } catch let error as ContextError {
            metrics?.wrote(writes: sent.count, nanos: Int64(NIODeadline.now().uptimeNanoseconds &- started), committed: false)
            for i in sent { responses[i] = CoreResponse(error) }
            return responses
        } catch {
            metrics?.wrote(writes: sent.count, nanos: Int64(NIODeadline.now().uptimeNanoseconds &- started), committed: false)
            let failure = CoreResponse(storageFailure(error))
            for i in sent { responses[i] = failure }
            return responses
        }
        guard replies.count == sent.count else {
            logger.error("the store answered \(replies.count) results for \(sent.count) commands")
            for i in sent { responses[i] = CoreResponse(.internalError("the task store answered the wrong number of results")) }
            return responses
        }
        for (i, reply) in zip(sent, replies) {
            var response: CoreResponse
            switch reply.result {
            case .success(let outcome):
                response = Self.response(route: writes[i].route, outcome: outcome, locationBase: configuration.locationBase)
            case .failure(let error):
                response = CoreResponse(error)
            }
            if reply.replayed { response.headers.append(CoreResponse.replayedHeader) }
            responses[i] = response
        }
        return responses
    }

    /// The key of a write (`Idempotency-Key`), with the fingerprint of the request it stands
    /// for: operation and ids (the route in its canonical form) and the body as sent. A
    /// gateway sends canonical JSON, so its resends fingerprint the same; a REST client that
    /// retries sends the same bytes.
    private func claim(_ request: CoreRequest, route: RESTRoute, tenant: String) throws(ContextError) -> IdempotencyClaim? {
        guard let key = try RESTChecks.idempotencyKey(request.idempotencyKey) else { return nil }
        var hash = SHA256()
        Self.withFingerprintPrefix(route) { hash.update(bufferPointer: $0) }
        request.body.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
        return IdempotencyClaim(tenant: tenant, key: key, fingerprint: Array(hash.finalize()),
                                lifetimeSeconds: request.keyMadeByGateway ? configuration.gatewayKeyLifetimeSeconds
                                    : configuration.idempotencyKeyLifetimeSeconds,
                                fresh: request.keyMadeByGateway && request.keyIsFresh)
    }

    /// Calls `body` with `method NUL target NUL` of `route`: the bytes of `route.method` and
    /// `route.target(basePath: "")`, the canonical form every key's fingerprint starts with.
    /// A write (the only routes with keys) has no query string, so its bytes are written here
    /// from the ids, on the stack, without building a string per call; the fingerprints stay
    /// byte for byte those of keys stored before (`fingerprintPrefixIsTheRouteText`).
    static func withFingerprintPrefix(_ route: RESTRoute, _ body: (UnsafeRawBufferPointer) -> Void) {
        let (suffix, child): (StaticString, Int64?) = switch route {
        case .startService: ("/start", nil)
        case .endService: ("/end", nil)
        case .deleteService: ("", nil)
        case .startState: ("/states/start", nil)
        case .endState(_, let id): ("/states/", id)
        case .startTask: ("/tasks/start", nil)
        case .endTask(_, let id): ("/tasks/", id)
        case .queryService, .queryState, .queryTask, .queryTasks: ("", nil)
        }
        guard route.takesBody || route.operation == .deleteService, route.serviceID >= 0, (child ?? 0) >= 0 else {
            // Reads (never keyed) and ids out of range (never routed): the text itself.
            return Array((route.method + "\0" + route.target(basePath: "") + "\0").utf8).withUnsafeBytes(body)
        }
        // "DELETE" NUL "/services/" 19 digits "/states/" 10 digits "/end" NUL: 60 bytes at most.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { out in
            var n = 0
            func put(_ text: StaticString) {
                text.withUTF8Buffer { for byte in $0 { out[n] = byte; n += 1 } }
            }
            func put(_ id: Int64) {
                var digits = 0
                var rest = id
                repeat { digits += 1; rest /= 10 } while rest > 0
                rest = id
                for i in stride(from: n + digits - 1, through: n, by: -1) {
                    out[i] = UInt8(truncatingIfNeeded: 0x30 + rest % 10)
                    rest /= 10
                }
                n += digits
            }
            put(route.operation == .deleteService ? "DELETE" : "POST")
            out[n] = 0
            n += 1
            put("/services")
            if route.operation != .startService {
                put("/")
                put(route.serviceID)
            }
            put(suffix)
            if let child {
                put(child)
                put("/end")
            }
            out[n] = 0
            n += 1
            body(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(out)[..<n]))
        }
    }

    /// Runs a prepared read and answers it.
    func execute(read route: RESTRoute, tenant: String) async -> CoreResponse {
        do throws(ContextError) {
            return try await read(route, tenant: tenant)
        } catch {
            return CoreResponse(error)
        }
    }

    // MARK: Checks (shared with the gateway's REST side: `RESTChecks`)

    private func authorize(_ header: String?) throws(ContextError) {
        try RESTChecks.authorize(header, tokens: configuration.authTokens)
    }

    static func tenant(_ header: String?) throws(ContextError) -> String {
        try RESTChecks.tenant(header)
    }

    // MARK: Writes

    /// The store command of a write route, with its body validated; nil for reads.
    private func command(for route: RESTRoute, tenant: String, request: CoreRequest) throws(ContextError) -> WriteCommand? {
        func event(_ kind: ResourceKind, _ phase: EventPhase) throws(ContextError) -> Event {
            try RESTChecks.event(for: route, body: request.body, contentType: request.contentType,
                                 limits: configuration.limits) ?? Event(kind: kind, phase: phase)
        }
        let now = clock()
        switch route {
        case .startService:
            return .startService(tenant: tenant, NewResource(try event(.service, .start), processedAt: now))
        case .endService(let sid):
            return .endService(tenant: tenant, serviceID: sid,
                               completed: try event(.service, .end).eventMembers(processedAt: now))
        case .deleteService(let sid):
            return .deleteService(tenant: tenant, serviceID: sid)
        case .startState(let sid):
            return .startState(tenant: tenant, serviceID: sid, NewResource(try event(.state, .start), processedAt: now))
        case .endState(let sid, let stid):
            return .endState(tenant: tenant, serviceID: sid, stateID: stid,
                             completed: try event(.state, .end).eventMembers(processedAt: now))
        case .startTask(let sid):
            return .startTask(tenant: tenant, serviceID: sid, NewResource(try event(.task, .start), processedAt: now))
        case .endTask(let sid, let tid):
            return .endTask(tenant: tenant, serviceID: sid, taskID: tid,
                            completed: try event(.task, .end).eventMembers(processedAt: now))
        case .queryService, .queryState, .queryTask, .queryTasks:
            return nil
        }
    }

    /// The success answer of §2 for a write.
    static func response(route: RESTRoute, outcome: WriteOutcome, locationBase: String) -> CoreResponse {
        switch (route, outcome) {
        case (.startService, .created(let id)):
            return CoreResponse(status: 201, location: "\(locationBase)/services/\(id)",
                                body: Representation.created(.service, id: id))
        case (.startState(let sid), .created(let id)):
            return CoreResponse(status: 201, location: "\(locationBase)/services/\(sid)/states/\(id)",
                                body: Representation.created(.state, id: id))
        case (.startTask(let sid), .created(let id)):
            // Singular `service`, exactly as the vendor's page gives it (§2).
            return CoreResponse(status: 201, location: "\(locationBase)/service/\(sid)/tasks/\(id)",
                                body: Representation.created(.task, id: id))
        case (.deleteService, _):
            return CoreResponse(status: 200)
        default:
            return CoreResponse(status: 204)
        }
    }

    // MARK: Reads

    private func read(_ route: RESTRoute, tenant: String) async throws(ContextError) -> CoreResponse {
        let started = NIODeadline.now().uptimeNanoseconds
        defer { metrics?.read(nanos: Int64(NIODeadline.now().uptimeNanoseconds &- started)) }
        do {
            let body: [UInt8]
            switch route {
            case .queryService(let sid, let include):
                body = Representation.render(try await store.service(tenant: tenant, serviceID: sid, include: include))
            case .queryState(let sid, let stid, let include):
                body = Representation.render(try await store.state(tenant: tenant, serviceID: sid, stateID: stid, include: include))
            case .queryTask(let sid, let tid):
                body = Representation.render(ResourceView(record: try await store.task(tenant: tenant, serviceID: sid, taskID: tid)))
            case .queryTasks(let sid, let filter):
                body = Representation.renderList(try await store.tasks(tenant: tenant, serviceID: sid, filter: filter))
            default:
                throw ContextError.internalError("route \(route) is not a read")
            }
            return CoreResponse(status: 200, body: body)
        } catch let error as ContextError {
            throw error
        } catch {
            throw storageFailure(error)
        }
    }

    /// Storage failures (README, "Storage failures"): what the client may conclude decides the
    /// answer. Not applied and worth retrying soon: 503 with `Retry-After`; applied or not,
    /// nobody knows: 500 saying so; anything else: 500. The body never carries the
    /// underlying error's text (it goes to the log).
    func storageFailure(_ error: any Error) -> ContextError {
        guard let error = error as? TaskStoreError else {
            metrics?.storeError(kind: "failed")
            logger.error("storage failure", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError("the task store failed; the request was not applied")
        }
        switch error.kind {
        case .busy:
            metrics?.storeError(kind: "busy")
            logger.warning("storage busy", metadata: ["error": "\(error.detail)"])
            return .overloaded("the task store is busy; retry shortly")
        case .unavailable:
            metrics?.storeError(kind: "unavailable")
            logger.warning("storage unavailable", metadata: ["error": "\(error.detail)"])
            return .storeUnavailable("the task store cannot be reached; the request was not applied, retry shortly")
        case .outcomeUnknown:
            metrics?.storeError(kind: "outcome_unknown")
            logger.error("storage outcome unknown", metadata: ["error": "\(error.detail)"])
            return .outcomeUnknown(
                "the connection to the task store broke while committing: the request may or may not have been applied")
        case .failed:
            metrics?.storeError(kind: "failed")
            logger.error("storage failure", metadata: ["error": "\(error.detail)"])
            return .internalError("the task store failed; the request was not applied")
        }
    }

    // MARK: The store's identity

    /// `GET {base}/store` (an extension, like the batch endpoint): which store this core
    /// serves, so a gateway never spreads calls over cores of different stores. No
    /// credentials or tenant needed: it reveals a random id and the engine's name only.
    func isStorePath(_ target: String) -> Bool {
        isExtensionPath(target, suffix: Self.storeSuffix)
    }

    /// Whether `target` names `{base}{suffix}` (query ignored; one trailing slash tolerated,
    /// as for every other path). Bytes, not Characters: called for every batch item (perf:
    /// 2.4% of the CPU when it counted and compared Characters).
    func isExtensionPath(_ target: String, suffix: String) -> Bool {
        var path = target.utf8.prefix { $0 != UInt8(ascii: "?") }
        if path.last == UInt8(ascii: "/") && path.count > 1 { path = path.dropLast() }
        let base = RESTRoute.trimmedBase(configuration.basePath).utf8
        let suffix = suffix.utf8
        return path.count == base.count + suffix.count
            && path.starts(with: base) && path.suffix(suffix.count).elementsEqual(suffix)
    }

    public static let storeSuffix = "/store"

    private func storeAnswer(_ request: CoreRequest) -> CoreResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            let path = String(request.target.prefix { $0 != "?" })
            return CoreResponse(.methodNotAllowed(request.method, path: path), allow: ["GET", "HEAD"])
        }
        return CoreResponse(status: 200, body: store.identity.jsonBody)  // with "idempotency":true
    }
}
