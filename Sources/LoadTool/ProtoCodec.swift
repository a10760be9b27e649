import CProtobufC
import ContextProto
import NIOCore

// The edge where the load tool meets protobuf-c (STYLE.md: C interop kept at the edge): requests
// packed with the generated `*__pack`, answers read with `*__unpack` and freed at once.

/// One step's event content as protobuf-c sub-messages and C strings, built once and only read
/// afterwards: `*__pack` reads them and never writes, so every event loop may pack from the same
/// table at once, hence `@unchecked Sendable`. Freed with the table.
final class ProtoContent: @unchecked Sendable {
    let typeName: UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>?
    let event: UnsafeMutablePointer<Genesys__Cs__V1__EventFields>?
    let disposition: UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>?
    let customerID: UnsafeMutablePointer<CChar>?
    let dispositionDesc: UnsafeMutablePointer<CChar>?
    let extensionsJSON: UnsafeMutablePointer<CChar>?
    let estDuration: Int32?
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var attributes: [UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>] = []
    private var mediaType: UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>?

    init(_ content: EventContent) {
        var strings: [UnsafeMutablePointer<CChar>] = []
        var attributes: [UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>] = []
        func cString(_ s: String?) -> UnsafeMutablePointer<CChar>? {
            guard let s else { return nil }
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: s.utf8.count + 1)
            for (i, byte) in s.utf8.enumerated() { p[i] = CChar(bitPattern: byte) }
            p[s.utf8.count] = 0
            strings.append(p)
            return p
        }
        func attribute(_ name: String?) -> UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>? {
            guard let name else { return nil }
            let a = UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>.allocate(capacity: 1)
            a.initialize(to: Genesys__Cs__V1__BusinessAttribute())
            genesys__cs__v1__business_attribute__init(a)
            a.pointee.value_case = GENESYS__CS__V1__BUSINESS_ATTRIBUTE__VALUE_NAME
            a.pointee.name = cString(name)
            attributes.append(a)
            return a
        }
        typeName = attribute(content.typeName)
        disposition = attribute(content.disposition)
        customerID = cString(content.customerID)
        dispositionDesc = cString(content.dispositionDesc)
        extensionsJSON = cString(content.extensionsJSON)
        estDuration = content.estDuration
        if content.interactionID != nil || content.mediaType != nil {
            let e = UnsafeMutablePointer<Genesys__Cs__V1__EventFields>.allocate(capacity: 1)
            e.initialize(to: Genesys__Cs__V1__EventFields())
            genesys__cs__v1__event_fields__init(e)
            if let id = cString(content.interactionID) {
                e.pointee._interaction_id_case = GENESYS__CS__V1__EVENT_FIELDS___INTERACTION_ID_INTERACTION_ID
                e.pointee.interaction_id = id
            }
            e.pointee.media_type = attribute(content.mediaType)
            event = e
        } else {
            event = nil
        }
        self.strings = strings
        self.attributes = attributes
    }

    deinit {
        for s in strings { s.deallocate() }
        for a in attributes { a.deallocate() }
        event?.deallocate()
    }
}

enum ProtoCodec {
    /// Appends the gRPC length-prefixed message (PROTOCOL-HTTP2.md: flag 0, 4-byte big-endian
    /// length) of `call` to `buffer`.
    static func encode(_ call: LoadCall, _ content: ProtoContent, into buffer: inout ByteBuffer) {
        switch call.method {
        case .startService:
            var m = Genesys__Cs__V1__StartServiceRequest()
            genesys__cs__v1__start_service_request__init(&m)
            m.service_type = content.typeName
            m.event = content.event
            if let id = content.customerID {
                m._customer_id_case = GENESYS__CS__V1__START_SERVICE_REQUEST___CUSTOMER_ID_CUSTOMER_ID
                m.customer_id = id
            }
            if let d = content.estDuration {
                m._est_duration_case = GENESYS__CS__V1__START_SERVICE_REQUEST___EST_DURATION_EST_DURATION
                m.est_duration = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__START_SERVICE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            write(&buffer, genesys__cs__v1__start_service_request__get_packed_size(&m)) {
                genesys__cs__v1__start_service_request__pack(&m, $0)
            }
        case .startState:
            var m = Genesys__Cs__V1__StartStateRequest()
            genesys__cs__v1__start_state_request__init(&m)
            m.service_id = call.serviceID
            m.state_type = content.typeName
            m.event = content.event
            if let d = content.estDuration {
                m._est_duration_case = GENESYS__CS__V1__START_STATE_REQUEST___EST_DURATION_EST_DURATION
                m.est_duration = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__START_STATE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            write(&buffer, genesys__cs__v1__start_state_request__get_packed_size(&m)) {
                genesys__cs__v1__start_state_request__pack(&m, $0)
            }
        case .startTask:
            var m = Genesys__Cs__V1__StartTaskRequest()
            genesys__cs__v1__start_task_request__init(&m)
            m.service_id = call.serviceID
            m.state_id = call.stateID
            m.task_type = content.typeName
            m.event = content.event
            if let d = content.estDuration {
                m._est_duration_case = GENESYS__CS__V1__START_TASK_REQUEST___EST_DURATION_EST_DURATION
                m.est_duration = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__START_TASK_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            write(&buffer, genesys__cs__v1__start_task_request__get_packed_size(&m)) {
                genesys__cs__v1__start_task_request__pack(&m, $0)
            }
        case .completeTask:
            var m = Genesys__Cs__V1__CompleteTaskRequest()
            genesys__cs__v1__complete_task_request__init(&m)
            m.service_id = call.serviceID
            m.task_id = call.taskID
            m.event = content.event
            m.disposition = content.disposition
            if let d = content.dispositionDesc {
                m._disposition_desc_case = GENESYS__CS__V1__COMPLETE_TASK_REQUEST___DISPOSITION_DESC_DISPOSITION_DESC
                m.disposition_desc = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__COMPLETE_TASK_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            write(&buffer, genesys__cs__v1__complete_task_request__get_packed_size(&m)) {
                genesys__cs__v1__complete_task_request__pack(&m, $0)
            }
        case .completeState:
            var m = Genesys__Cs__V1__CompleteStateRequest()
            genesys__cs__v1__complete_state_request__init(&m)
            m.service_id = call.serviceID
            m.state_id = call.stateID
            m.event = content.event
            m.disposition = content.disposition
            if let d = content.dispositionDesc {
                m._disposition_desc_case = GENESYS__CS__V1__COMPLETE_STATE_REQUEST___DISPOSITION_DESC_DISPOSITION_DESC
                m.disposition_desc = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__COMPLETE_STATE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            write(&buffer, genesys__cs__v1__complete_state_request__get_packed_size(&m)) {
                genesys__cs__v1__complete_state_request__pack(&m, $0)
            }
        case .queryService:
            var m = Genesys__Cs__V1__QueryServiceRequest()
            genesys__cs__v1__query_service_request__init(&m)
            m.service_id = call.serviceID
            // Everything the journey made: what an agent desktop shows.
            m.active_states = 1
            m.completed_states = 1
            m.active_tasks = 1
            m.completed_tasks = 1
            write(&buffer, genesys__cs__v1__query_service_request__get_packed_size(&m)) {
                genesys__cs__v1__query_service_request__pack(&m, $0)
            }
        case .completeService:
            var m = Genesys__Cs__V1__CompleteServiceRequest()
            genesys__cs__v1__complete_service_request__init(&m)
            m.service_id = call.serviceID
            m.event = content.event
            m.disposition = content.disposition
            if let d = content.dispositionDesc {
                m._disposition_desc_case = GENESYS__CS__V1__COMPLETE_SERVICE_REQUEST___DISPOSITION_DESC_DISPOSITION_DESC
                m.disposition_desc = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__COMPLETE_SERVICE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            write(&buffer, genesys__cs__v1__complete_service_request__get_packed_size(&m)) {
                genesys__cs__v1__complete_service_request__pack(&m, $0)
            }
        }
    }

    /// The prefix, then `size` bytes packed straight into the buffer's storage.
    @inline(__always)
    private static func write(_ buffer: inout ByteBuffer, _ size: Int, _ pack: (UnsafeMutablePointer<UInt8>) -> Int) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(truncatingIfNeeded: size), endianness: .big)
        guard size > 0 else { return }  // an all-default message is 0 bytes (STACK-NOTES.md)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            guard let base = raw.baseAddress else { return 0 }
            return pack(base.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Reads the answer message of `method`. The id it carries for a start (service, state or
    /// task id), 0 for the others; nil when the bytes are not a valid message of its type.
    static func decodeAnswer(_ method: LoadMethod, _ bytes: UnsafeRawBufferPointer) -> Int64? {
        switch method {
        case .startService:
            return unpacked(bytes, genesys__cs__v1__start_service_response__unpack,
                            genesys__cs__v1__start_service_response__free_unpacked) { $0.pointee.service_id }
        case .startState:
            return unpacked(bytes, genesys__cs__v1__start_state_response__unpack,
                            genesys__cs__v1__start_state_response__free_unpacked) { Int64($0.pointee.state_id) }
        case .startTask:
            return unpacked(bytes, genesys__cs__v1__start_task_response__unpack,
                            genesys__cs__v1__start_task_response__free_unpacked) { Int64($0.pointee.task_id) }
        case .completeTask:
            return unpacked(bytes, genesys__cs__v1__complete_task_response__unpack,
                            genesys__cs__v1__complete_task_response__free_unpacked) { _ in 0 }
        case .completeState:
            return unpacked(bytes, genesys__cs__v1__complete_state_response__unpack,
                            genesys__cs__v1__complete_state_response__free_unpacked) { _ in 0 }
        case .queryService:
            return unpacked(bytes, genesys__cs__v1__query_service_response__unpack,
                            genesys__cs__v1__query_service_response__free_unpacked) { $0.pointee.service == nil ? nil : 0 }
        case .completeService:
            return unpacked(bytes, genesys__cs__v1__complete_service_response__unpack,
                            genesys__cs__v1__complete_service_response__free_unpacked) { _ in 0 }
        }
    }

    /// Unpacks with malloc (a nil allocator), reads, frees.
    @inline(__always)
    private static func unpacked<M>(
        _ bytes: UnsafeRawBufferPointer,
        _ unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<M>?,
        _ free: (UnsafeMutablePointer<M>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void,
        _ read: (UnsafeMutablePointer<M>) -> Int64?
    ) -> Int64? {
        let message: UnsafeMutablePointer<M>?
        if let base = bytes.baseAddress, bytes.count > 0 {
            message = unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
        } else {
            // An all-default answer is 0 bytes and may come without an address.
            var none: UInt8 = 0
            message = withUnsafePointer(to: &none) { unpack(nil, 0, $0) }
        }
        guard let message else { return nil }
        defer { free(message, nil) }
        return read(message)
    }
}
