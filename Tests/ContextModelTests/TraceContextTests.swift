import Testing
@testable import ContextModel

@Suite("W3C traceparent")
struct TraceContextTests {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("A valid traceparent is read field by field and written back the same")
    func parsesAndFormats() throws {
        let parent = try #require(TraceParent(Self.valid))
        #expect(parent.traceIDHigh == 0x4bf9_2f35_77b3_4da6)
        #expect(parent.traceIDLow == 0xa3ce_929d_0e0e_4736)
        #expect(parent.parentID == 0x00f0_67aa_0ba9_02b7)
        #expect(parent.flags == 1)
        #expect(parent.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parent.parentIDHex == "00f067aa0ba902b7")
        #expect(parent.header == Self.valid)
        #expect(TraceParent("00-00000000000000000000000000000001-0000000000000001-00")?.header
                == "00-00000000000000000000000000000001-0000000000000001-00")
    }

    static let malformed: [String] = [
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",            // short
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",          // version 00 is exactly 55
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",           // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",           // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",           // zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",           // version ff
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",           // dash misplaced
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",          // future version: '-' must follow
        "not a traceparent at all, but long enough to be looked at closely",
    ]

    @Test("Malformed values are refused (the call then starts a trace of its own)", arguments: malformed)
    func refusesMalformed(_ value: String) {
        #expect(TraceParent(value) == nil)
    }

    @Test("A later version is read by its version-00 fields and sent on as version 00")
    func laterVersion() throws {
        let parent = try #require(TraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later"))
        #expect(parent.header == Self.valid)
        #expect(TraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?.header == Self.valid)
    }

    @Test("A call continues the caller's trace with a span of its own; the next hop's parent is that span")
    func continues() throws {
        var random = TraceIDGenerator(seed: 42)
        let incoming = try #require(TraceParent(Self.valid))
        let call = TraceContext(continuing: incoming, using: &random)
        #expect(call.traceIDHex == incoming.traceIDHex)
        #expect(call.parentSpanID == incoming.parentID)
        #expect(call.parentSpanIDHex == "00f067aa0ba902b7")
        #expect(call.spanID != 0 && call.spanID != incoming.parentID)
        #expect(call.flags == 1)
        let next = call.outgoing
        #expect(next.traceIDHex == incoming.traceIDHex)
        #expect(next.parentID == call.spanID)
        #expect(next.header == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(call.spanIDHex)-01")
    }

    @Test("Without a traceparent a call starts a new trace: new ids, no parent, not sampled")
    func starts() {
        var random = TraceIDGenerator(seed: 7)
        let a = TraceContext(continuing: nil, using: &random)
        let b = TraceContext(continuing: nil, using: &random)
        #expect(a.traceIDHex != b.traceIDHex)
        #expect(a.spanID != b.spanID)
        #expect(a.parentSpanID == 0 && a.parentSpanIDHex.isEmpty)
        #expect(a.flags == 0)
        #expect(TraceParent(a.outgoing.header) == a.outgoing)
        #expect(a.traceIDHex.count == 32 && a.spanIDHex.count == 16)
    }
}
