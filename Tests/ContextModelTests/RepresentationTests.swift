import Foundation
import Testing
@testable import ContextModel

// `Representation` against CONTEXT-SERVICES.md §4: member order `service_id` (top level
// only), the resource's id, the resource-level fields, `started`, `completed`, the
// extensions as sent, then the child arrays in the order asked for.

private enum RepFixtures {
    static let startedText = #""timestamp":"2017-04-27T10:18:00.000Z","interaction_id":"42""#
    static let completedText = #""timestamp":"2017-04-27T10:48:00.000Z","disposition":"sold""#

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    static func record(
        _ kind: ResourceKind, service: Int64, id: Int64, head: String = "", started: String = startedText,
        completed: String? = nil, extensions: String = ""
    ) -> ResourceRecord {
        ResourceRecord(kind: kind, serviceID: service, id: id, head: bytes(head), started: bytes(started),
                       completed: completed.map(bytes), extensions: bytes(extensions))
    }

    /// The §4 example task.
    static let task = record(
        .task, service: 21456878, id: 15928,
        head: #""task_type":"customer info","state_id":3,"est_duration":460"#,
        extensions: #""question3":"will be better with cable tv and on-demand video","Proposal":[ {"price":25000} ]"#
    )

    /// Strict validation with the project's reader (no duplicate keys at any depth) and with
    /// Foundation's, as a second opinion. Returns the top-level keys in order.
    static func validObjectKeys(_ json: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        #expect((try? JSONSerialization.jsonObject(with: Data(json))) != nil, "Foundation refuses \(text(json))",
                sourceLocation: sourceLocation)
        do {
            return try StrictJSON.readObject(json).map(\.key)
        } catch {
            Issue.record("StrictJSON refuses \(text(json)): \(error)", sourceLocation: sourceLocation)
            return []
        }
    }

    static func occurrences(of needle: String, in json: [UInt8]) -> Int {
        text(json).components(separatedBy: needle).count - 1
    }
}

@Suite("Representation")
struct RepresentationTests {
    fileprivate typealias F = RepFixtures

    @Test("a task: service_id, task_id, head, started, extensions")
    func activeTask() {
        let json = Representation.render(ResourceView(record: F.task))
        #expect(F.text(json) == #"{"service_id":21456878,"task_id":15928,"task_type":"customer info","state_id":3,"est_duration":460,"started":{"timestamp":"2017-04-27T10:18:00.000Z","interaction_id":"42"},"question3":"will be better with cable tv and on-demand video","Proposal":[ {"price":25000} ]}"#)
        #expect(F.validObjectKeys(json) == ["service_id", "task_id", "task_type", "state_id", "est_duration", "started", "question3", "Proposal"])
    }

    @Test("a completed task: completed after started, before the extensions")
    func completedTask() {
        var r = F.task
        r.completed = F.bytes(F.completedText)
        #expect(!r.isActive)
        let json = Representation.render(ResourceView(record: r))
        #expect(F.text(json) == #"{"service_id":21456878,"task_id":15928,"task_type":"customer info","state_id":3,"est_duration":460,"started":{"timestamp":"2017-04-27T10:18:00.000Z","interaction_id":"42"},"completed":{"timestamp":"2017-04-27T10:48:00.000Z","disposition":"sold"},"question3":"will be better with cable tv and on-demand video","Proposal":[ {"price":25000} ]}"#)
        #expect(F.validObjectKeys(json) == ["service_id", "task_id", "task_type", "state_id", "est_duration", "started", "completed", "question3", "Proposal"])
    }

    @Test("a bare task has no empty members and no stray commas")
    func bareTask() {
        let r = F.record(.task, service: 1, id: 2, started: #""timestamp":"2017-04-27T10:18:00.000Z""#)
        let json = Representation.render(ResourceView(record: r))
        #expect(F.text(json) == #"{"service_id":1,"task_id":2,"started":{"timestamp":"2017-04-27T10:18:00.000Z"}}"#)
        let noStarted = F.record(.task, service: 1, id: 2, started: "", completed: "")
        #expect(F.text(Representation.render(ResourceView(record: noStarted))) == #"{"service_id":1,"task_id":2,"started":{},"completed":{}}"#)
    }

    @Test("a task rendered from parsed start and end events")
    func fromEvents() throws {
        let start = try Event.parse(F.bytes(EventFixtures.seedBody), kind: .task, phase: .start)
        let end = try Event.parse(F.bytes(#"{"disposition":"sold","timestamp":"2017-04-27T10:48:00Z","why":"price"}"#), kind: .task, phase: .end)
        let processed = Timestamp(millisecondsSinceEpoch: 1_493_288_280_000)
        let record = ResourceRecord(
            kind: .task, serviceID: 21456878, id: 15928, head: start.resourceMembers,
            started: start.eventMembers(processedAt: processed), completed: end.eventMembers(processedAt: processed),
            extensions: start.resourceExtensions)
        let json = Representation.render(ResourceView(record: record))
        let expected = #"{"service_id":21456878,"task_id":15928,"task_type":"customer info","started":{"timestamp":"2017-04-27T10:18:00.000Z"},"completed":{"timestamp":"2017-04-27T10:48:00.000Z","disposition":"sold","why":"price"},"#
            + EventFixtures.seedExtensions + "}"
        #expect(F.text(json) == expected)
        #expect(F.validObjectKeys(json) == ["service_id", "task_id", "task_type", "started", "completed", "question3", "Proposal"])
    }

    @Test("a state: service_id, state_id, head, started")
    func state() {
        let r = F.record(.state, service: 9, id: 4, head: #""state_type":"greeting","est_duration":30"#,
                         completed: F.completedText, extensions: #""step":1"#)
        let json = Representation.render(ResourceView(record: r))
        #expect(F.text(json) == #"{"service_id":9,"state_id":4,"state_type":"greeting","est_duration":30,"started":{"timestamp":"2017-04-27T10:18:00.000Z","interaction_id":"42"},"completed":{"timestamp":"2017-04-27T10:48:00.000Z","disposition":"sold"},"step":1}"#)
        #expect(F.validObjectKeys(json) == ["service_id", "state_id", "state_type", "est_duration", "started", "completed", "step"])
    }

    @Test("a service with child arrays: nested objects carry no service_id")
    func serviceWithChildren() {
        let service = F.record(.service, service: 7, id: 7, head: #""service_type":"sales","customer_id":"c1""#,
                               started: #""timestamp":"T0""#, extensions: #""vip":true"#)
        let state1 = F.record(.state, service: 7, id: 1, head: #""state_type":"greeting""#, started: #""timestamp":"T1""#)
        let state2 = F.record(.state, service: 7, id: 2, started: #""timestamp":"T2""#, completed: #""timestamp":"T3""#)
        let task1 = F.record(.task, service: 7, id: 1, head: #""task_type":5,"state_id":1"#, started: #""timestamp":"T4""#, extensions: #""x":[1]"#)
        let task2 = F.record(.task, service: 7, id: 2, started: #""timestamp":"T5""#)
        let task3 = F.record(.task, service: 7, id: 3, started: #""timestamp":"T6""#, completed: #""timestamp":"T7""#)
        let view = ResourceView(record: service, children: [
            ("active_states", [state1]),
            ("completed_states", [state2]),
            ("active_tasks", [task1, task2]),
            ("completed_tasks", [task3]),
        ])
        let json = Representation.render(view)
        #expect(F.text(json) == #"{"service_id":7,"service_type":"sales","customer_id":"c1","started":{"timestamp":"T0"},"vip":true,"active_states":[{"state_id":1,"state_type":"greeting","started":{"timestamp":"T1"}}],"completed_states":[{"state_id":2,"started":{"timestamp":"T2"},"completed":{"timestamp":"T3"}}],"active_tasks":[{"task_id":1,"task_type":5,"state_id":1,"started":{"timestamp":"T4"},"x":[1]},{"task_id":2,"started":{"timestamp":"T5"}}],"completed_tasks":[{"task_id":3,"started":{"timestamp":"T6"},"completed":{"timestamp":"T7"}}]}"#)
        #expect(F.validObjectKeys(json) == ["service_id", "service_type", "customer_id", "started", "vip",
                                            "active_states", "completed_states", "active_tasks", "completed_tasks"])
        #expect(F.occurrences(of: "\"service_id\"", in: json) == 1)
    }

    @Test("child arrays render in the order given, empty ones as []")
    func emptyChildren() {
        let service = F.record(.service, service: 3, id: 3, started: #""timestamp":"T""#, completed: #""timestamp":"U""#)
        let view = ResourceView(record: service, children: [("completed_tasks", []), ("active_states", [])])
        let json = Representation.render(view)
        #expect(F.text(json) == #"{"service_id":3,"started":{"timestamp":"T"},"completed":{"timestamp":"U"},"completed_tasks":[],"active_states":[]}"#)
        #expect(F.validObjectKeys(json) == ["service_id", "started", "completed", "completed_tasks", "active_states"])
    }

    @Test("a state with its task arrays (Query State flags)")
    func stateWithTasks() {
        let state = F.record(.state, service: 5, id: 2, started: #""timestamp":"T""#)
        let task = F.record(.task, service: 5, id: 8, head: #""state_id":2"#, started: #""timestamp":"U""#)
        let json = Representation.render(ResourceView(record: state, children: [("active_tasks", [task]), ("completed_tasks", [])]))
        #expect(F.text(json) == #"{"service_id":5,"state_id":2,"started":{"timestamp":"T"},"active_tasks":[{"task_id":8,"state_id":2,"started":{"timestamp":"U"}}],"completed_tasks":[]}"#)
        #expect(F.occurrences(of: "\"service_id\"", in: json) == 1)
        _ = F.validObjectKeys(json)
    }

    @Test("renderList: each element stands alone with its service_id")
    func list() throws {
        let a = F.record(.task, service: 7, id: 1, head: #""task_type":"a""#, started: #""timestamp":"T""#)
        let b = F.record(.task, service: 7, id: 2, started: #""timestamp":"U""#, completed: #""timestamp":"V""#, extensions: #""e":-0"#)
        let json = Representation.renderList([a, b])
        #expect(F.text(json) == #"[{"service_id":7,"task_id":1,"task_type":"a","started":{"timestamp":"T"}},{"service_id":7,"task_id":2,"started":{"timestamp":"U"},"completed":{"timestamp":"V"},"e":-0}]"#)
        #expect(F.occurrences(of: "\"service_id\":7", in: json) == 2)
        _ = F.validObjectKeys(F.bytes(#"{"list":"#) + json + F.bytes("}"))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [[String: Any]])
        #expect(parsed.count == 2)
        #expect(parsed.map { $0["task_id"] as? Int } == [1, 2])
        #expect(parsed.map { $0["service_id"] as? Int } == [7, 7])
    }

    @Test("renderList of nothing and of one")
    func smallLists() {
        #expect(F.text(Representation.renderList([])) == "[]")
        let one = F.record(.task, service: 1, id: 1, started: "")
        #expect(F.text(Representation.renderList([one])) == #"[{"service_id":1,"task_id":1,"started":{}}]"#)
    }

    @Test("the body of a 201", arguments: [
        (ResourceKind.task, Int64(15928), #"{"task_id":15928}"#),
        (.state, 1, #"{"state_id":1}"#),
        (.service, 21456878, #"{"service_id":21456878}"#),
        (.service, Int64.max, #"{"service_id":9223372036854775807}"#),
        (.task, 2147483647, #"{"task_id":2147483647}"#),
    ])
    func created(_ kind: ResourceKind, _ id: Int64, _ expected: String) {
        let json = Array(Representation.created(kind, id: id).readableBytesView)
        #expect(F.text(json) == expected)
        #expect(F.validObjectKeys(json) == [kind.idKey])
    }

    @Test("ResourceView equality compares the child arrays too")
    func viewEquality() {
        let s = F.record(.service, service: 1, id: 1)
        let t = F.record(.task, service: 1, id: 1)
        #expect(ResourceView(record: s) == ResourceView(record: s, children: []))
        #expect(ResourceView(record: s, children: [("active_tasks", [t])]) == ResourceView(record: s, children: [("active_tasks", [t])]))
        #expect(ResourceView(record: s, children: [("active_tasks", [t])]) != ResourceView(record: s, children: [("completed_tasks", [t])]))
        #expect(ResourceView(record: s, children: [("active_tasks", [t])]) != ResourceView(record: s, children: [("active_tasks", [])]))
        #expect(ResourceView(record: s) != ResourceView(record: s, children: [("active_tasks", [])]))
    }
}
