import ContextModel
import NIOCore

/// The batch extension (README, "The batch extension"): `POST {base}/batch` with an
/// `application/x-cs-batch` body (`BatchCodec`) carries many operations of the contract and
/// gets one result per operation back, in order, each exactly what the single call would have
/// answered.
///
/// Items run in order through the single call's own steps (`prepare`, then `execute`).
/// Consecutive writes go to the store as one `write` call: one transaction, one commit (one
/// fsync) for the group, each command in its own savepoint so a refused one changes nothing.
/// A read runs after the writes before it have committed (read-your-writes within the batch),
/// so a batch of writes only is exactly one transaction.
extension ContextService {
    /// Whether `target` names the batch endpoint (any method; query ignored; one trailing
    /// slash tolerated, as for every other path). Always false when the extension is off.
    func isBatchPath(_ target: String) -> Bool {
        configuration.batchEnabled && isExtensionPath(target, suffix: BatchCodec.path)
    }

    /// Whether a request with this method and target is a batch, so its body is held to
    /// `maxBatchBytes` instead of `limits.maxBytes`.
    func isBatchRequest(method: String, target: String) -> Bool {
        method == "POST" && isBatchPath(target)
    }

    /// The whole batch request: method, size, content type, framing; then the items.
    func handleBatch(_ request: CoreRequest) async -> CoreResponse {
        guard request.method == "POST" else {
            let path = String(request.target.prefix { $0 != "?" })
            return CoreResponse(.methodNotAllowed(request.method, path: path), allow: ["POST"])
        }
        if let repeated = request.repeatedHeader {
            // Items carry their own tenant, but an ambiguous request is refused all the same.
            return CoreResponse(.validation("the \(repeated) header must be given at most once"))
        }
        guard request.body.readableBytes <= configuration.maxBatchBytes else {
            return CoreResponse(.batchTooLarge(limit: configuration.maxBatchBytes))
        }
        guard Self.isBatchContentType(request.contentType) else {
            return CoreResponse(.batchUnsupportedMediaType(request.contentType))
        }
        let items: [ReceivedBatchItem]
        do {
            // Read in place: each item's body is a slice of the buffer the batch arrived in.
            items = try BatchCodec.decodeRequest(request.body, maxItems: configuration.maxBatchItems)
        } catch {
            return CoreResponse(error.contextError)
        }
        let started = NIODeadline.now().uptimeNanoseconds
        let responses = await run(batch: items)
        observeBatch(items, responses, startedNanos: started)
        do {
            let body = try BatchCodec.encodeResponse(responses.map {
                BatchResult(status: $0.status, location: $0.location, retryAfter: $0.retryAfter, body: $0.body,
                            replayed: $0.isReplay)
            })
            return CoreResponse(status: 200, body: body, contentType: BatchCodec.contentType)
        } catch {
            // Only a Location longer than 65535 bytes gets here (a public base that long).
            return CoreResponse(.internalError("a batch result does not fit the batch format: \(error)"))
        }
    }

    /// Answers every item, in order (see the type's comment for the grouping of writes). An
    /// item carries its route typed (`BatchCodec`): it is never turned into a path and parsed.
    func run(batch items: [ReceivedBatchItem]) async -> [CoreResponse] {
        var responses = [CoreResponse?](repeating: nil, count: items.count)
        var group: [(index: Int, command: WriteCommand, route: RESTRoute, claim: IdempotencyClaim?)] = []
        for (index, item) in items.enumerated() {
            // The single call's size check comes first, before its route is even looked at.
            guard item.body.readableBytes <= configuration.limits.maxBytes else {
                responses[index] = CoreResponse(.payloadTooLarge(limit: configuration.limits.maxBytes))
                continue
            }
            let route: RESTRoute
            switch item.route {
            case .success(let r):
                route = r
            case .failure(let error):
                // What the equivalent REST request gets (an id out of range: 400; no such
                // operation: 404). This item only: the others run.
                responses[index] = CoreResponse(error)
                continue
            }
            switch prepare(route, request(for: item, route: route)) {
            case .respond(let response):
                responses[index] = response
            case .write(let command, let route, let claim):
                group.append((index, command, route, claim))
            case .read(let route, let tenant):
                await commit(&group, into: &responses)
                responses[index] = await execute(read: route, tenant: tenant)
            }
        }
        await commit(&group, into: &responses)
        return responses.map { $0! }
    }

    /// The headers and body of the single call an item stands for. Its route is already
    /// known: `prepare(_:_:)` reads neither the method nor the target.
    func request(for item: ReceivedBatchItem, route: RESTRoute) -> CoreRequest {
        var request = CoreRequest(method: route.method, target: "", contentType: "application/json",
                                  tenant: item.tenant, authorization: item.authorization, body: item.body,
                                  idempotencyKey: item.idempotencyKey, keyMadeByGateway: item.keyMadeByGateway)
        request.keyIsFresh = item.keyIsFresh
        return request
    }

    /// Sends the pending writes as one group and files their answers.
    private func commit(
        _ group: inout [(index: Int, command: WriteCommand, route: RESTRoute, claim: IdempotencyClaim?)],
        into responses: inout [CoreResponse?]
    ) async {
        guard !group.isEmpty else { return }
        let answers = await execute(writes: group.map { (command: $0.command, route: $0.route, claim: $0.claim) })
        for (write, answer) in zip(group, answers) {
            responses[write.index] = answer
        }
        group.removeAll(keepingCapacity: true)
    }

    /// `application/x-cs-batch`, parameters ignored, case-insensitive.
    static func isBatchContentType(_ value: String?) -> Bool {
        RESTChecks.mediaType(value) == BatchCodec.contentType
    }
}
