import ContextModel

/// The OpenAPI 3.1 document of the REST API (`gateway/openapi.json`, embedded at build time by
/// `gateway/scripts/gen-openapi.sh`), served by the core and by the gateway at
/// `{base}/openapi.json`: an extension path like `{base}/store`, with no credentials or
/// tenant needed.
public enum OpenAPIDocument {
    /// The path of the document, relative to the base path.
    public static let path = "/openapi.json"

    /// The document's bytes, made once: what the core serves.
    public static let json: [UInt8] = Array(text.utf8)

    /// What the gateway serves: the document without the core's own extensions (`/batch`,
    /// `/store`), which are not served on the gateway's port (404 there).
    public static let gatewayJSON: [UInt8] = dropping(paths: ["/batch", "/store"], from: json)

    /// `document` with the named members of its `paths` object left out; the rest byte for
    /// byte (the `paths` object loses its line breaks). A document that does not parse is
    /// returned as it is (check-generated.sh and the tests parse it).
    static func dropping(paths dropped: Set<String>, from document: [UInt8]) -> [UInt8] {
        let limits = JSONLimits(maxBytes: document.count, maxDepth: 64)
        guard let top = try? StrictJSON.readObject(document, limits: limits),
              let paths = top.first(where: { $0.key == "paths" }) else { return document }
        let inner = Array(document[paths.rawValue])
        guard let members = try? StrictJSON.readObject(inner, limits: limits) else { return document }
        var out = Array(document[..<paths.rawValue.lowerBound])
        out.append(UInt8(ascii: "{"))
        for member in members where !dropped.contains(member.key) {
            if out.last != UInt8(ascii: "{") { out.append(UInt8(ascii: ",")) }
            out += inner[member.rawKey]
            out.append(UInt8(ascii: ":"))
            out += inner[member.rawValue]
        }
        out.append(UInt8(ascii: "}"))
        out += document[paths.rawValue.upperBound...]
        return out
    }

    /// Whether `target` names `{base}/openapi.json` (query ignored; one trailing slash
    /// tolerated, as for every other path).
    public static func isPath(_ target: String, basePath: String) -> Bool {
        var path = target.utf8.prefix { $0 != UInt8(ascii: "?") }
        if path.last == UInt8(ascii: "/") && path.count > 1 { path = path.dropLast() }
        let base = RESTRoute.trimmedBase(basePath).utf8
        return path.count == base.count + Self.path.utf8.count
            && path.starts(with: base) && path.suffix(Self.path.utf8.count).elementsEqual(Self.path.utf8)
    }

    /// The answer to a request for the document (`body`: `json` or `gatewayJSON`): 200 to GET,
    /// 405 to anything else.
    public static func response(method: String, target: String, body: [UInt8] = json) -> RESTResponse {
        guard method == "GET" else {
            let path = String(target.prefix { $0 != "?" })
            return RESTResponse(.methodNotAllowed(method, path: path), allow: ["GET"])
        }
        return RESTResponse(status: 200, body: body)
    }
}
