import ContextModel

/// Configuration of the REST core, built once at start-up.
public struct CoreConfiguration: Sendable {
    /// The path every operation lives under (§2).
    public var basePath: String = RESTRoute.defaultBasePath
    /// What `Location` headers start with: the public base of the API. Default: the relative
    /// `basePath`; set an absolute URL (`https://cs.example.com/genesys/1/cs`) behind a proxy.
    public var publicBase: String? = nil
    /// Body size and nesting limits (§3: 1 MiB, depth 64).
    public var limits: JSONLimits = .defaults
    /// When not empty, every request must carry `Authorization: Bearer <one of these>` (§5: 401).
    public var authTokens: [String] = []
    /// The batch extension, `POST {basePath}/batch` (README, "The batch extension"). When
    /// false that path is a 404 like any unknown path, so a client can tell the endpoint is
    /// absent. Default: on.
    public var batchEnabled: Bool = true
    /// Most items in one batch: more is a 413 for the whole batch, read from its header before
    /// any item is parsed. Default: 1000.
    public var maxBatchItems: Int = 1000
    /// Largest batch body, in bytes: more is a 413 for the whole batch, refused from
    /// `Content-Length` before it is read. Default: 16 MiB. Each item's body is still held to
    /// `limits`.
    public var maxBatchBytes: Int = 16 << 20
    /// How long a client's `Idempotency-Key` is kept (README, "Exactly once"): a retry within
    /// it gets the first answer again. Default: 24 hours, the IETF draft's example and what
    /// payment APIs keep.
    public var idempotencyKeyLifetimeSeconds: Int64 = 24 * 3600
    /// How long a key a gateway made for its own resends is kept: it only has to outlive the
    /// gateway's resend window (a call's deadline). Default: 10 minutes.
    public var gatewayKeyLifetimeSeconds: Int64 = 600

    public init() {}

    public static var defaults: CoreConfiguration { CoreConfiguration() }

    var locationBase: String { publicBase ?? basePath }
}
