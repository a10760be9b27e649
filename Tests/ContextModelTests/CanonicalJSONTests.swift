import Testing
@testable import ContextModel

// Golden vectors for `Event.canonicalJSONBytes`, `resourceMembers`, `eventMembers(processedAt:)`
// and `resourceExtensions` (DESIGN.md §4, CONTEXT-SERVICES.md §3–4), and the round-trip
// property over every accepted body of EventTests.

/// One event body and the exact bytes each rendering must give.
struct CanonicalGolden: Sendable, CustomTestStringConvertible {
    var name: String
    var kind: ResourceKind
    var phase: EventPhase
    var body: String
    var canonical: String
    var resourceMembers: String
    /// With `processedAt` = `CanonicalFixtures.processedAt`.
    var eventMembers: String
    var resourceExtensions: String

    var testDescription: String { name }
}

enum CanonicalFixtures {
    /// 2017-07-14T02:40:00.000Z: the "server's time of processing" in these tests.
    static let processedAt = Timestamp(millisecondsSinceEpoch: 1_500_000_000_000)
    static let processedText = "2017-07-14T02:40:00.000Z"

    static let goldens: [CanonicalGolden] = [
        CanonicalGolden(
            name: "start task with every field and extensions",
            kind: .task, phase: .start,
            body: #"""
            { "question3" : "will be better with cable tv and on-demand video",
              "est_duration": 460, "media_type": "voice", "resource_id": -5, "resource_type": 7,
              "application_id": 101, "application_type": "orchestration", "interaction_id": "42",
              "session_id": "s\/1\u0001\u00e9", "task_type": "customer info", "state_id": 3,
              "timestamp": "2017-04-27T12:18:00.5+02:00", "Proposal": [ {"price": 25000} ] }
            """#,
            canonical: #"{"state_id":3,"task_type":"customer info","session_id":"s/1\u0001é","interaction_id":"42","application_type":"orchestration","resource_type":7,"media_type":"voice","application_id":101,"resource_id":-5,"est_duration":460,"timestamp":"2017-04-27T10:18:00.500Z","question3":"will be better with cable tv and on-demand video","Proposal":[ {"price": 25000} ]}"#,
            resourceMembers: #""task_type":"customer info","state_id":3,"est_duration":460"#,
            eventMembers: #""timestamp":"2017-04-27T10:18:00.500Z","session_id":"s/1\u0001é","interaction_id":"42","application_type":"orchestration","resource_type":7,"media_type":"voice","application_id":101,"resource_id":-5"#,
            resourceExtensions: #""question3":"will be better with cable tv and on-demand video","Proposal":[ {"price": 25000} ]"#
        ),
        CanonicalGolden(
            name: "start task of the seed page",
            kind: .task, phase: .start,
            body: EventFixtures.seedBody,
            canonical: #"{"task_type":"customer info","# + EventFixtures.seedExtensions + "}",
            resourceMembers: #""task_type":"customer info""#,
            eventMembers: #""timestamp":""# + processedText + #"""#,
            resourceExtensions: EventFixtures.seedExtensions
        ),
        CanonicalGolden(
            name: "start service with customer_id",
            kind: .service, phase: .start,
            body: #"{"x":{"y":1},"customer_id":"c\"1","service_type":12,"interaction_id":"i"}"#,
            canonical: #"{"service_type":12,"interaction_id":"i","customer_id":"c\"1","x":{"y":1}}"#,
            resourceMembers: #""service_type":12,"customer_id":"c\"1""#,
            eventMembers: #""timestamp":""# + processedText + #"","interaction_id":"i""#,
            resourceExtensions: #""x":{"y":1}"#
        ),
        CanonicalGolden(
            name: "start service with contact_key",
            kind: .service, phase: .start,
            body: #"{"contact_key":"ck-9","service_type":"sales","est_duration":600}"#,
            canonical: #"{"service_type":"sales","est_duration":600,"contact_key":"ck-9"}"#,
            resourceMembers: #""service_type":"sales","est_duration":600,"contact_key":"ck-9""#,
            eventMembers: #""timestamp":""# + processedText + #"""#,
            resourceExtensions: ""
        ),
        CanonicalGolden(
            name: "start state",
            kind: .state, phase: .start,
            body: #"{"state_type":"greeting","est_duration":30,"media_type":2,"timestamp":"2017-04-27T10:18:00Z"}"#,
            canonical: #"{"state_type":"greeting","media_type":2,"est_duration":30,"timestamp":"2017-04-27T10:18:00.000Z"}"#,
            resourceMembers: #""state_type":"greeting","est_duration":30"#,
            eventMembers: #""timestamp":"2017-04-27T10:18:00.000Z","media_type":2"#,
            resourceExtensions: ""
        ),
        CanonicalGolden(
            name: "end task with disposition and an extension",
            kind: .task, phase: .end,
            body: #"{"note": ["a", 1], "disposition_desc":"bought the \"S.U.V.\"","disposition":"sold","timestamp":"2017-04-27T10:48:00Z","resource_id":9}"#,
            canonical: #"{"resource_id":9,"timestamp":"2017-04-27T10:48:00.000Z","disposition":"sold","disposition_desc":"bought the \"S.U.V.\"","note":["a", 1]}"#,
            resourceMembers: "",
            eventMembers: #""timestamp":"2017-04-27T10:48:00.000Z","resource_id":9,"disposition":"sold","disposition_desc":"bought the \"S.U.V.\"","note":["a", 1]"#,
            resourceExtensions: ""
        ),
        CanonicalGolden(
            name: "end service with a disposition id",
            kind: .service, phase: .end,
            body: #"{"disposition":7}"#,
            canonical: #"{"disposition":7}"#,
            resourceMembers: "",
            eventMembers: #""timestamp":""# + processedText + #"","disposition":7"#,
            resourceExtensions: ""
        ),
        CanonicalGolden(
            name: "end state with only extensions",
            kind: .state, phase: .end,
            body: #"{ "a" : 1 , "b":{ } }"#,
            canonical: #"{"a":1,"b":{ }}"#,
            resourceMembers: "",
            eventMembers: #""timestamp":""# + processedText + #"","a":1,"b":{ }"#,
            resourceExtensions: ""
        ),
    ] + EventFixtures.kindsAndPhases.map { pair in
        CanonicalGolden(
            name: "empty \(pair.0.name) \(pair.1.name) event",
            kind: pair.0, phase: pair.1, body: " { } ",
            canonical: "{}", resourceMembers: "",
            eventMembers: #""timestamp":""# + processedText + #"""#,
            resourceExtensions: ""
        )
    }

    /// Every accepted body of the EventTests tables and of the goldens above.
    static let roundTripCases: [EventAcceptCase] = {
        var rows = EventFixtures.accepted
        for row in EventFixtures.extensionCases {
            rows.append(EventAcceptCase(name: row.name, kind: row.kind, phase: row.phase, body: Array(row.body.utf8), expected: row.expected))
        }
        for golden in goldens {
            if let event = try? Event.parse(Array(golden.body.utf8), kind: golden.kind, phase: golden.phase) {
                rows.append(EventAcceptCase(name: golden.name, kind: golden.kind, phase: golden.phase, body: Array(golden.body.utf8), expected: event))
            }
        }
        return rows
    }()
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite("Canonical JSON")
struct CanonicalJSONTests {
    @Test("golden vectors: canonicalJSON, resourceMembers, eventMembers, resourceExtensions",
          arguments: CanonicalFixtures.goldens)
    func golden(_ g: CanonicalGolden) throws {
        let event = try Event.parse(Array(g.body.utf8), kind: g.kind, phase: g.phase)
        #expect(text(event.canonicalJSONBytes) == g.canonical)
        #expect(event.canonicalJSONBytes == Array(g.canonical.utf8))
        #expect(text(event.resourceMembers) == g.resourceMembers)
        #expect(text(event.eventMembers(processedAt: CanonicalFixtures.processedAt)) == g.eventMembers)
        #expect(text(event.resourceExtensions) == g.resourceExtensions)
        // Each fragment, in braces, is one valid JSON object.
        for fragment in [event.resourceMembers, event.eventMembers(processedAt: CanonicalFixtures.processedAt), event.resourceExtensions] {
            #expect(throws: Never.self) { try StrictJSON.readObject([UInt8(ascii: "{")] + fragment + [UInt8(ascii: "}")]) }
        }
    }

    @Test("the event timestamp is kept when given and defaulted to the processing time when absent")
    func timestampDefault() throws {
        let later = Timestamp(millisecondsSinceEpoch: 1_600_000_000_000)  // 2020-09-13T12:26:40.000Z
        let given = try Event.parse(Array(#"{"timestamp":"2017-04-27T10:18:00Z"}"#.utf8), kind: .task, phase: .end)
        #expect(text(given.eventMembers(processedAt: CanonicalFixtures.processedAt)) == #""timestamp":"2017-04-27T10:18:00.000Z""#)
        #expect(text(given.eventMembers(processedAt: later)) == #""timestamp":"2017-04-27T10:18:00.000Z""#)
        let absent = try Event.parse(Array("{}".utf8), kind: .task, phase: .end)
        #expect(text(absent.eventMembers(processedAt: later)) == #""timestamp":"2020-09-13T12:26:40.000Z""#)
        // The canonical body never invents a timestamp: the core stamps it on receipt.
        #expect(text(absent.canonicalJSONBytes) == "{}")
        #expect(absent.timestamp == nil)
    }

    @Test("start-event extensions stay at the resource level, end-event extensions inside the event")
    func extensionPlacement() throws {
        let start = try Event.parse(Array(#"{"k":1}"#.utf8), kind: .state, phase: .start)
        #expect(text(start.resourceExtensions) == #""k":1"#)
        #expect(text(start.eventMembers(processedAt: CanonicalFixtures.processedAt)) == #""timestamp":""# + CanonicalFixtures.processedText + #"""#)
        let end = try Event.parse(Array(#"{"k":1}"#.utf8), kind: .state, phase: .end)
        #expect(end.resourceExtensions.isEmpty)
        #expect(end.resourceMembers.isEmpty)
        #expect(text(end.eventMembers(processedAt: CanonicalFixtures.processedAt)) == #""timestamp":""# + CanonicalFixtures.processedText + #"","k":1"#)
    }

    @Test("an event built in code renders every field in the canonical order")
    func builtInCode() {
        var e = Event(kind: .task, phase: .end)
        e.disposition = .id(-1)
        e.dispositionDesc = "tab\there"
        e.mediaType = .id(Int64.min)
        e.sessionID = "\u{7F}/é"
        e.timestamp = Timestamp(millisecondsSinceEpoch: 0)
        e.extensions = Array(#""z":0"#.utf8)
        #expect(text(e.canonicalJSONBytes) == #"{"session_id":"\#u{7F}/é","media_type":-9223372036854775808,"timestamp":"1970-01-01T00:00:00.000Z","disposition":-1,"disposition_desc":"tab\there","z":0}"#)
    }

    @Test("Event.parse(e.canonicalJSONBytes) == e for every accepted body", arguments: CanonicalFixtures.roundTripCases)
    func roundTrip(_ row: EventAcceptCase) throws {
        let event = try Event.parse(row.body, kind: row.kind, phase: row.phase)
        let canonical = event.canonicalJSONBytes
        let again = try Event.parse(canonical, kind: row.kind, phase: row.phase)
        #expect(again == event)
        #expect(EventFixtures.stringBytes(again) == EventFixtures.stringBytes(event))
        #expect(again.extensions == event.extensions)
        // Canonical form is a fixed point, and the fragments do not depend on the spelling sent.
        #expect(again.canonicalJSONBytes == canonical)
        #expect(again.resourceMembers == event.resourceMembers)
        #expect(again.eventMembers(processedAt: CanonicalFixtures.processedAt) == event.eventMembers(processedAt: CanonicalFixtures.processedAt))
        // The timestamp is normalised: the canonical text is the 24-byte form.
        if let ts = event.timestamp {
            #expect(text(canonical).contains(#""timestamp":""# + ts.text + #"""#))
        }
    }

    @Test("the round-trip table covers every kind and phase")
    func coverage() {
        let rows = CanonicalFixtures.roundTripCases
        #expect(rows.count > 150)
        for (kind, phase) in EventFixtures.kindsAndPhases {
            #expect(rows.contains { $0.kind == kind && $0.phase == phase })
        }
    }
}
