import ContextModel
import NIOCore
import NIOHTTP1
import Testing
@testable import Gateway

/// The batcher encodes a batch straight into the ByteBuffer that becomes the HTTP request body.
@Suite("Batches encoded into the outbound buffer")
struct BatchBufferSinkTests {
    static var items: [BatchItem] {
        var include = ServiceInclude()
        include.activeTasks = true
        var filter = TaskFilter()
        filter.status = .completed
        filter.taskTypes = ["customer info", "a,b"]
        filter.stateID = 4
        let trace = TraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")!
        return [
            BatchItem(.startTask(serviceID: 7), tenant: "t", authorization: "Bearer x", body: Array(#"{"task_type":"a"}"#.utf8),
                      idempotencyKey: "gw-1", keyMadeByGateway: true, keyIsFresh: true, trace: trace),
            BatchItem(.queryService(serviceID: 7, include: include)),
            BatchItem(.queryTasks(serviceID: 7, filter: filter), tenant: "t"),
            BatchItem(.endTask(serviceID: 7, taskID: 2), body: [UInt8](repeating: 0x20, count: 5000)),
            BatchItem(.deleteService(serviceID: Int64.max)),
        ]
    }

    @Test("The same bytes as the array encoder, in one buffer sized from each item's encodedSize (no regrowth)")
    func sameBytesNoRegrowth() throws {
        let items = Self.items
        var size = BatchCodec.headerBytes
        for item in items { size += try BatchCodec.encodedSize(of: item) }
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        let capacity = buffer.capacity
        try BatchCodec.appendRequestHeader(count: items.count, to: &buffer)
        for item in items { try BatchCodec.appendItem(item, to: &buffer) }
        #expect(buffer.readableBytes == size)
        #expect(buffer.capacity == capacity, "the buffer never grew")
        #expect(Array(buffer.readableBytesView) == (try BatchCodec.encodeRequest(items)))
        let decoded = try BatchCodec.decodeRequest(buffer)
        #expect(decoded.map(\.item) == items)
    }

    @Test("Vendor mode sends the route as real REST: its method and its path under the base",
          arguments: Self.items.map(\.route))
    func vendorRequest(route: RESTRoute) {
        let request = UpstreamRequest(route, basePath: "/genesys/1/cs/", tenant: "t", authorization: nil,
                                      body: ByteBuffer())
        #expect(request.method == HTTPMethod(rawValue: route.method))
        #expect(request.target == route.target(basePath: "/genesys/1/cs"))
        #expect(RESTRoute.parse(method: request.method.rawValue, target: request.target) == .success(route))
    }
}
