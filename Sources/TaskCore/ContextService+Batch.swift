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
        guard request.body.count <= configuration.maxBatchBytes else {
            return CoreResponse(.batchTooLarge(limit: configuration.maxBatchBytes))
        }
        guard Self.isBatchContentType(request.contentType) else {
            return CoreResponse(.batchUnsupportedMediaType(request.contentType))
        }
        let items: [BatchItem]
        let version: Int
        do {
            (items, version) = try BatchCodec.decodeRequestVersioned(request.body, maxItems: configuration.maxBatchItems)
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
            }, version: version)
            return CoreResponse(status: 200, body: body, contentType: BatchCodec.contentType)
        } catch {
            // Only a Location longer than 65535 bytes gets here (a public base that long).
            return CoreResponse(.internalError("a batch result does not fit the batch format: \(error)"))
        }
    }

    /// Answers every item, in order (see the type's comment for the grouping of writes).
    func run(batch items: [BatchItem]) async -> [CoreResponse] {
        var responses = [CoreResponse?](repeating: nil, count: items.count)
        var group: [(index: Int, command: WriteCommand, route: RESTRoute, claim: IdempotencyClaim?)] = []
        for (index, item) in items.enumerated() {
            let request = request(for: item)
            // The single call's size check comes first, before its route is even looked at.
            if isBatchRequest(method: request.method, target: request.target) {
                // An item naming the batch endpoint gets what that single call gets: its JSON
                // body is refused (413 or 415) before any decoding, so batches never nest.
                guard item.body.count <= configuration.maxBatchBytes else {
                    responses[index] = CoreResponse(.batchTooLarge(limit: configuration.maxBatchBytes))
                    continue
                }
                responses[index] = await handleBatch(request)
                continue
            }
            guard item.body.count <= configuration.limits.maxBytes else {
                responses[index] = CoreResponse(.payloadTooLarge(limit: configuration.limits.maxBytes))
                continue
            }
            switch prepare(request) {
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

    /// The single call an item stands for: its target under the base path, its body JSON.
    func request(for item: BatchItem) -> CoreRequest {
        let base = RESTRoute.trimmedBase(configuration.basePath)
        var request = CoreRequest(method: item.method.name, target: String(base) + item.target, contentType: "application/json",
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
