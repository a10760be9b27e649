internal import ContextProto

/// The files of the FileDescriptorSet committed with the code (`cs_descriptor_set`, made by
/// gateway/scripts/gen-proto.sh from proto/), indexed for server reflection: by file name and by
/// every fully-qualified symbol they declare (services, methods, messages, nested messages,
/// fields, oneofs, enums, enum values, extensions). Built once; immutable.
struct DescriptorIndex: Sendable {
    struct File: Sendable {
        var name: String
        /// The serialized FileDescriptorProto, as protoc wrote it.
        var bytes: [UInt8]
        var dependencies: [String]
        var services: [String]
    }

    private(set) var files: [File] = []
    private var byName: [String: Int] = [:]
    private var bySymbol: [String: Int] = [:]

    /// The index of the embedded set. A set that does not parse is a build defect (the
    /// generated file is checked by check-generated.sh): it traps at first use.
    static let embedded: DescriptorIndex = {
        var size = 0
        let base = cs_descriptor_set(&size)!
        do {
            return try DescriptorIndex(set: Array(UnsafeBufferPointer(start: base, count: size)))
        } catch {
            fatalError("the embedded FileDescriptorSet does not parse")
        }
    }()

    init(set: [UInt8]) throws(ProtobufReader.Malformed) {
        var reader = ProtobufReader(set)
        while let (field, value) = try reader.next() {
            // FileDescriptorSet.file = 1
            guard field == 1, case .bytes(let range) = value else { continue }
            try add(file: Array(set[range]))
        }
    }

    /// Every service of every file, fully qualified, in file order.
    var services: [String] { files.flatMap(\.services) }

    /// The file declaring `symbol`, then every file it depends on, transitively, each once
    /// (gRPC reflection: "with transitive dependencies").
    func fileContaining(symbol: String) -> [File]? {
        bySymbol[symbol].map(withDependencies)
    }

    func file(named name: String) -> [File]? {
        byName[name].map(withDependencies)
    }

    private func withDependencies(_ root: Int) -> [File] {
        var seen: Set<Int> = [root]
        var order = [root]
        var next = 0
        while next < order.count {
            for dependency in files[order[next]].dependencies {
                if let i = byName[dependency], seen.insert(i).inserted { order.append(i) }
            }
            next += 1
        }
        return order.map { files[$0] }
    }

    // MARK: Reading descriptors (descriptor.proto field numbers)

    private mutating func add(file bytes: [UInt8]) throws(ProtobufReader.Malformed) {
        var name = ""
        var package = ""
        var dependencies: [String] = []
        var reader = ProtobufReader(bytes)
        // The package comes first in protoc's output, but nothing here relies on that.
        var declarations: [(field: Int, range: Range<Int>)] = []
        while let (field, value) = try reader.next() {
            guard case .bytes(let range) = value else { continue }
            switch field {
            case 1: name = try reader.string(range)
            case 2: package = try reader.string(range)
            case 3: dependencies.append(try reader.string(range))
            case 4, 5, 6, 7: declarations.append((field, range))
            default: break
            }
        }
        let index = files.count
        let scope = package.isEmpty ? "" : package + "."
        var services: [String] = []
        var symbols: [String] = []
        for (field, range) in declarations {
            switch field {
            case 4: try Self.message(bytes, range, scope: scope, into: &symbols)
            case 5: try Self.enumeration(bytes, range, scope: scope, into: &symbols)
            case 6:
                let service = try Self.service(bytes, range, scope: scope, into: &symbols)
                services.append(service)
            default: symbols.append(scope + (try Self.name(bytes, range)))  // a top-level extension
            }
        }
        files.append(File(name: name, bytes: bytes, dependencies: dependencies, services: services))
        byName[name] = index
        for symbol in symbols where bySymbol[symbol] == nil { bySymbol[symbol] = index }
    }

    /// The `name = 1` of a descriptor.
    private static func name(_ bytes: [UInt8], _ range: Range<Int>) throws(ProtobufReader.Malformed) -> String {
        var reader = ProtobufReader(bytes, range: range)
        while let (field, value) = try reader.next() {
            if field == 1, case .bytes(let r) = value { return try reader.string(r) }
        }
        return ""
    }

    /// DescriptorProto: name 1, field 2, nested_type 3, enum_type 4, extension 6, oneof_decl 8.
    private static func message(_ bytes: [UInt8], _ range: Range<Int>, scope: String,
                                into symbols: inout [String]) throws(ProtobufReader.Malformed) {
        let full = scope + (try name(bytes, range))
        symbols.append(full)
        var reader = ProtobufReader(bytes, range: range)
        while let (field, value) = try reader.next() {
            guard case .bytes(let r) = value else { continue }
            switch field {
            case 2, 6, 8: symbols.append(full + "." + (try name(bytes, r)))
            case 3: try message(bytes, r, scope: full + ".", into: &symbols)
            case 4: try enumeration(bytes, r, scope: full + ".", into: &symbols)
            default: break
            }
        }
    }

    /// EnumDescriptorProto: name 1, value 2. Values are named in the enum's enclosing scope
    /// (as C++ scoping has them: `pkg.SERVING`), and also under the enum, which some clients
    /// ask for.
    private static func enumeration(_ bytes: [UInt8], _ range: Range<Int>, scope: String,
                                    into symbols: inout [String]) throws(ProtobufReader.Malformed) {
        let full = scope + (try name(bytes, range))
        symbols.append(full)
        var reader = ProtobufReader(bytes, range: range)
        while let (field, value) = try reader.next() {
            guard field == 2, case .bytes(let r) = value else { continue }
            let value = try name(bytes, r)
            symbols.append(scope + value)
            symbols.append(full + "." + value)
        }
    }

    /// ServiceDescriptorProto: name 1, method 2. Returns the service's full name.
    private static func service(_ bytes: [UInt8], _ range: Range<Int>, scope: String,
                                into symbols: inout [String]) throws(ProtobufReader.Malformed) -> String {
        let full = scope + (try name(bytes, range))
        symbols.append(full)
        var reader = ProtobufReader(bytes, range: range)
        while let (field, value) = try reader.next() {
            if field == 2, case .bytes(let r) = value { symbols.append(full + "." + (try name(bytes, r))) }
        }
        return full
    }
}
