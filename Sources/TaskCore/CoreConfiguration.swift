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

    public init() {}

    public static var defaults: CoreConfiguration { CoreConfiguration() }

    var locationBase: String { publicBase ?? basePath }
}
