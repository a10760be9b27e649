import ContextModel
import GRPCServer
import NIOCore

/// gRPC server reflection (gRPC's `server-reflection.md`; proto/grpc/reflection), served by the
/// gateway itself from the FileDescriptorSet of proto/ embedded at build time
/// (`DescriptorIndex.embedded`), so that a generic client (grpcurl, Postman, grpcio-reflection)
/// can list the services and build calls without the .proto files.
///
/// `v1` and `v1alpha` are one protocol under two package names (identical messages and field
/// numbers), so one implementation answers both. `ServerReflectionInfo` is a bidirectional
/// stream: each request message gets one response message, in order, as it arrives, and the
/// call ends OK when the client half-closes (`GRPCServerHandler`'s message streams). Over
/// gRPC-Web (no client streaming) a call is one request and one response.
///
/// Answered: `list_services`, `file_by_filename`, `file_containing_symbol` (each file with its
/// transitive dependencies); `file_containing_extension` and `all_extension_numbers_of_type`
/// get a NOT_FOUND error response (proto/ declares no extensions). Errors about one request are
/// `error_response` messages on a stream that goes on; a request that is not a reflection
/// request at all ends the call (INVALID_ARGUMENT), as grpc-go does.
enum ServerReflection {
    static let v1Path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    static let v1alphaPath = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

    static func serves(path: String) -> Bool {
        path == v1Path || path == v1alphaPath
    }

    private enum Request {
        case fileByFilename(String)
        case fileContainingSymbol(String)
        case fileContainingExtension
        case allExtensionNumbers(String)
        case listServices
    }

    /// The response to one `ServerReflectionRequest`, or the status that ends the call.
    static func answer(_ message: [UInt8], index: DescriptorIndex = .embedded) -> Result<GRPCResponseMessage, GRPCStatus> {
        var host = ""
        var request: Request?
        do throws(ProtobufReader.Malformed) {
            var reader = ProtobufReader(message)
            // ServerReflectionRequest: host 1, then the oneof message_request 3–7 (the last
            // one on the wire wins, as protobuf parsers have it).
            while let (field, value) = try reader.next() {
                guard case .bytes(let range) = value else { continue }
                switch field {
                case 1: host = try reader.string(range)
                case 3: request = .fileByFilename(try reader.string(range))
                case 4: request = .fileContainingSymbol(try reader.string(range))
                case 5: request = .fileContainingExtension
                case 6: request = .allExtensionNumbers(try reader.string(range))
                case 7: request = .listServices
                default: break
                }
            }
        } catch {
            return .failure(GRPCStatus(code: .internalError, message: "malformed ServerReflectionRequest", exception: nil))
        }
        guard let request else {
            return .failure(GRPCStatus(code: .invalidArgument,
                                       message: "a ServerReflectionRequest needs one of its message_request fields", exception: nil))
        }
        // ServerReflectionResponse: valid_host 1, original_request 2 (the request as it came),
        // then the oneof message_response 4–7.
        var w = ProtobufWriter()
        w.implicitString(1, host)
        w.lengthDelimited(2, message)
        func files(_ found: [DescriptorIndex.File]?, _ what: String) {
            guard let found else { return notFound("\(what) is not known to this server") }
            // FileDescriptorResponse.file_descriptor_proto = 1, repeated bytes.
            w.message(4) { for file in found { $0.lengthDelimited(1, file.bytes) } }
        }
        func notFound(_ text: String) {
            // ErrorResponse: error_code 1 (a grpc::StatusCode), error_message 2.
            w.message(7) {
                $0.implicitInt(1, Int64(GRPCStatusCode.notFound.rawValue))
                $0.implicitString(2, text)
            }
        }
        switch request {
        case .listServices:
            // ListServiceResponse.service = 1, each a ServiceResponse { name = 1 }.
            w.message(6) { out in
                for service in index.services { out.message(1) { $0.string(1, service) } }
            }
        case .fileByFilename(let name):
            files(index.file(named: name), "file \(name)")
        case .fileContainingSymbol(let symbol):
            files(index.fileContaining(symbol: symbol), "symbol \(symbol)")
        case .fileContainingExtension:
            notFound("no extensions are declared by the services of this server")
        case .allExtensionNumbers(let type):
            notFound("no extensions of \(type) are declared by the services of this server")
        }
        return .success(GRPCResponseMessage(framed: w.framed()))
    }
}
