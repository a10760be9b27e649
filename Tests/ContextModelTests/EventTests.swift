import Testing
@testable import ContextModel

// Tests of `Event.parse(_:kind:phase:limits:)` against CONTEXT-SERVICES.md §3.
//
// The tables of accepted bodies (`EventFixtures.accepted`, `EventFixtures.extensionCases`)
// are shared with CanonicalJSONTests, which round-trips every one of them.

// MARK: - Fixtures

/// One body that must be accepted, and the exact event it must give.
struct EventAcceptCase: Sendable, CustomTestStringConvertible {
    var name: String
    var kind: ResourceKind
    var phase: EventPhase
    var body: [UInt8]
    var expected: Event

    var testDescription: String { "\(kind.name) \(phase.name): \(name)" }
}

/// One body that must be refused, and what the refusal must say.
struct EventRefusalCase: Sendable, CustomTestStringConvertible {
    var name: String
    var kind: ResourceKind
    var phase: EventPhase
    var body: [UInt8]
    /// A text the message must contain (the key the refusal is about).
    var mentions: String
    var status: Int = 400
    var exception: String = "ValidationException"
    var limits: JSONLimits = .defaults

    var testDescription: String { "\(kind.name) \(phase.name): \(name)" }
}

/// Extensions: the body and the exact extension bytes it must keep.
struct EventExtensionCase: Sendable, CustomTestStringConvertible {
    var name: String
    var kind: ResourceKind
    var phase: EventPhase
    var body: String
    var extensions: String
    /// The standard fields the same body sets, if any.
    var expected: Event

    var testDescription: String { "\(kind.name) \(phase.name): \(name)" }
}

enum EventFixtures {
    /// 2017-04-27T10:18:00.000Z (the seed page's date).
    static let t0 = Timestamp(millisecondsSinceEpoch: 1_493_288_280_000)
    /// 2017-04-27T10:48:00.000Z.
    static let t1 = Timestamp(millisecondsSinceEpoch: 1_493_290_080_000)

    static let kindsAndPhases: [(ResourceKind, EventPhase)] = [
        (.service, .start), (.service, .end), (.state, .start), (.state, .end), (.task, .start), (.task, .end),
    ]

    static func event(_ kind: ResourceKind, _ phase: EventPhase, _ set: (inout Event) -> Void = { _ in }) -> Event {
        var e = Event(kind: kind, phase: phase)
        set(&e)
        return e
    }

    /// `{"key":value}` where `value` is already JSON text.
    static func object(_ key: String, _ value: String) -> String { "{\"" + key + "\":" + value + "}" }

    /// A JSON string literal for text that needs no escaping.
    static func quoted(_ text: String) -> String { "\"" + text + "\"" }

    static func repeated(_ unit: String, _ count: Int) -> String { String(repeating: unit, count: count) }

    static func ok(
        _ name: String, _ kind: ResourceKind, _ phase: EventPhase, _ body: String,
        _ set: (inout Event) -> Void = { _ in }
    ) -> EventAcceptCase {
        EventAcceptCase(name: name, kind: kind, phase: phase, body: Array(body.utf8), expected: event(kind, phase, set))
    }

    /// The parse result, errors included.
    static func parse(
        _ body: [UInt8], _ kind: ResourceKind, _ phase: EventPhase, limits: JSONLimits = .defaults
    ) -> Result<Event, ContextError> {
        do {
            return .success(try Event.parse(body, kind: kind, phase: phase, limits: limits))
        } catch {
            return .failure(error)
        }
    }

    static func parse(_ body: String, _ kind: ResourceKind, _ phase: EventPhase) -> Result<Event, ContextError> {
        parse(Array(body.utf8), kind, phase)
    }

    /// The UTF-8 bytes of every string an event holds. Swift's `String ==` compares by
    /// canonical equivalence ("é" == "e\u{301}"), so exactness needs the bytes.
    static func stringBytes(_ e: Event) -> [[UInt8]?] {
        func name(_ a: BusinessAttribute?) -> [UInt8]? {
            if case .name(let s)? = a { return Array(s.utf8) }
            return nil
        }
        let plain = [e.sessionID, e.interactionID, e.customerID, e.contactKey, e.dispositionDesc]
            .map { $0.map { Array($0.utf8) } }
        return plain + [name(e.type), name(e.applicationType), name(e.resourceType), name(e.mediaType), name(e.disposition)]
    }

    // MARK: Accepted bodies, one row per rule

    /// Resource-level fields, in the start events where they belong.
    static let resourceLevel: [EventAcceptCase] = [
        ok("state_id lowest id", .task, .start, #"{"state_id":1}"#) { $0.stateID = 1 },
        ok("state_id highest 32-bit id", .task, .start, #"{"state_id":2147483647}"#) { $0.stateID = Int32.max },
        ok("task_type as a name", .task, .start, #"{"task_type":"customer info"}"#) { $0.type = .name("customer info") },
        ok("task_type as an id", .task, .start, #"{"task_type":42}"#) { $0.type = .id(42) },
        ok("task_type Int64.min", .task, .start, #"{"task_type":-9223372036854775808}"#) { $0.type = .id(.min) },
        ok("task_type Int64.max", .task, .start, #"{"task_type":9223372036854775807}"#) { $0.type = .id(.max) },
        ok("task_type empty name", .task, .start, #"{"task_type":""}"#) { $0.type = .name("") },
        ok("task_type digits in a string stay a name", .task, .start, #"{"task_type":"42"}"#) { $0.type = .name("42") },
        ok("state_type as a name", .state, .start, #"{"state_type":"greeting"}"#) { $0.type = .name("greeting") },
        ok("state_type as an id", .state, .start, #"{"state_type":5}"#) { $0.type = .id(5) },
        ok("service_type as a name", .service, .start, #"{"service_type":"sales"}"#) { $0.type = .name("sales") },
        ok("service_type id 0", .service, .start, #"{"service_type":0}"#) { $0.type = .id(0) },
        ok("est_duration 0", .task, .start, #"{"est_duration":0}"#) { $0.estDuration = 0 },
        ok("est_duration -0 is 0", .task, .start, #"{"est_duration":-0}"#) { $0.estDuration = 0 },
        ok("est_duration 460", .task, .start, #"{"est_duration":460}"#) { $0.estDuration = 460 },
        ok("est_duration highest", .task, .start, #"{"est_duration":2147483647}"#) { $0.estDuration = Int32.max },
        ok("est_duration on a state", .state, .start, #"{"est_duration":30}"#) { $0.estDuration = 30 },
        ok("est_duration on a service", .service, .start, #"{"est_duration":600}"#) { $0.estDuration = 600 },
        ok("customer_id", .service, .start, #"{"customer_id":"cust-1"}"#) { $0.customerID = "cust-1" },
        ok("customer_id has no length limit", .service, .start, object("customer_id", quoted(repeated("c", 1000)))) {
            $0.customerID = repeated("c", 1000)
        },
        ok("contact_key", .service, .start, #"{"contact_key":"ck-9"}"#) { $0.contactKey = "ck-9" },
    ]

    /// Event-level fields, valid in every kind and phase.
    static let eventLevel: [EventAcceptCase] = kindsAndPhases.flatMap { (pair: (ResourceKind, EventPhase)) -> [EventAcceptCase] in
        let (k, p) = pair
        return [
            ok("session_id 32 ASCII", k, p, object("session_id", quoted(repeated("a", 32)))) { $0.sessionID = repeated("a", 32) },
            ok("interaction_id 50 ASCII", k, p, object("interaction_id", quoted(repeated("x", 50)))) { $0.interactionID = repeated("x", 50) },
            ok("interaction_id as in the seed", k, p, #"{"interaction_id":"42"}"#) { $0.interactionID = "42" },
            ok("application_type name", k, p, #"{"application_type":"orchestration"}"#) { $0.applicationType = .name("orchestration") },
            ok("application_type id", k, p, #"{"application_type":-1}"#) { $0.applicationType = .id(-1) },
            ok("application_id Int64.max", k, p, #"{"application_id":9223372036854775807}"#) { $0.applicationID = .max },
            ok("application_id Int64.min", k, p, #"{"application_id":-9223372036854775808}"#) { $0.applicationID = .min },
            ok("resource_type id", k, p, #"{"resource_type":3}"#) { $0.resourceType = .id(3) },
            ok("resource_type name", k, p, #"{"resource_type":"GVP"}"#) { $0.resourceType = .name("GVP") },
            ok("resource_id 0", k, p, #"{"resource_id":0}"#) { $0.resourceID = 0 },
            ok("resource_id negative", k, p, #"{"resource_id":-1}"#) { $0.resourceID = -1 },
            ok("media_type name", k, p, #"{"media_type":"voice"}"#) { $0.mediaType = .name("voice") },
            ok("media_type id", k, p, #"{"media_type":1}"#) { $0.mediaType = .id(1) },
            ok("timestamp canonical", k, p, #"{"timestamp":"2017-04-27T10:18:00.000Z"}"#) { $0.timestamp = t0 },
            ok("empty body", k, p, "{}"),
            ok("whitespace around an empty body", k, p, " \t\r\n{ \n}\r\n ") ,
        ]
    }

    /// Length limits count Unicode scalars, not bytes and not Characters.
    static let lengths: [EventAcceptCase] = [
        ok("session_id 32 precomposed é (64 bytes)", .task, .start, object("session_id", quoted(repeated("\u{E9}", 32)))) {
            $0.sessionID = repeated("\u{E9}", 32)
        },
        ok("session_id 32 emoji (128 bytes)", .task, .start, object("session_id", quoted(repeated("😀", 32)))) {
            $0.sessionID = repeated("😀", 32)
        },
        ok("session_id 16 decomposed é (32 scalars)", .task, .start, object("session_id", quoted(repeated("e\u{301}", 16)))) {
            $0.sessionID = repeated("e\u{301}", 16)
        },
        ok("session_id 16 skin-toned emoji (32 scalars)", .task, .start, object("session_id", quoted(repeated("👍🏽", 16)))) {
            $0.sessionID = repeated("👍🏽", 16)
        },
        ok("session_id 32 escaped \\u00e9 count decoded", .state, .end, object("session_id", quoted(repeated(#"\u00e9"#, 32)))) {
            $0.sessionID = repeated("\u{E9}", 32)
        },
        ok("session_id 32 escaped surrogate pairs", .service, .start, object("session_id", quoted(repeated(#"\ud83d\ude00"#, 32)))) {
            $0.sessionID = repeated("😀", 32)
        },
        ok("session_id empty", .task, .start, #"{"session_id":""}"#) { $0.sessionID = "" },
        ok("interaction_id 50 é", .task, .end, object("interaction_id", quoted(repeated("\u{E9}", 50)))) {
            $0.interactionID = repeated("\u{E9}", 50)
        },
        ok("interaction_id 25 skin-toned emoji (50 scalars)", .state, .start, object("interaction_id", quoted(repeated("👍🏽", 25)))) {
            $0.interactionID = repeated("👍🏽", 25)
        },
        ok("disposition_desc 64 ASCII", .task, .end, object("disposition_desc", quoted(repeated("d", 64)))) {
            $0.dispositionDesc = repeated("d", 64)
        },
        ok("disposition_desc 64 é", .state, .end, object("disposition_desc", quoted(repeated("\u{E9}", 64)))) {
            $0.dispositionDesc = repeated("\u{E9}", 64)
        },
        ok("disposition_desc 64 emoji", .service, .end, object("disposition_desc", quoted(repeated("😀", 64)))) {
            $0.dispositionDesc = repeated("😀", 64)
        },
        ok("disposition_desc 32 skin-toned emoji (64 scalars)", .task, .end, object("disposition_desc", quoted(repeated("👍🏽", 32)))) {
            $0.dispositionDesc = repeated("👍🏽", 32)
        },
    ]

    /// Timestamps: any RFC 3339 date-time, normalised to milliseconds UTC.
    static let timestamps: [EventAcceptCase] = [
        ok("timestamp without fraction", .task, .start, #"{"timestamp":"2017-04-27T10:18:00Z"}"#) { $0.timestamp = t0 },
        ok("timestamp with offset and 9 digits", .task, .start, #"{"timestamp":"2017-04-27T12:18:00.123456789+02:00"}"#) {
            $0.timestamp = Timestamp(millisecondsSinceEpoch: t0.millisecondsSinceEpoch + 123)
        },
        ok("timestamp with a negative offset", .state, .end, #"{"timestamp":"2017-04-27T05:18:00-05:00"}"#) { $0.timestamp = t0 },
        ok("timestamp lowercase t and z", .service, .start, #"{"timestamp":"2017-04-27t10:48:00z"}"#) { $0.timestamp = t1 },
        ok("timestamp one fraction digit", .task, .end, #"{"timestamp":"2017-04-27T10:18:00.5Z"}"#) {
            $0.timestamp = Timestamp(millisecondsSinceEpoch: t0.millisecondsSinceEpoch + 500)
        },
    ]

    /// Fields of end events.
    static let endFields: [EventAcceptCase] = [ResourceKind.service, .state, .task].flatMap { (k: ResourceKind) -> [EventAcceptCase] in
        [
            ok("disposition name", k, .end, #"{"disposition":"sold"}"#) { $0.disposition = .name("sold") },
            ok("disposition id", k, .end, #"{"disposition":7}"#) { $0.disposition = .id(7) },
            ok("disposition Int64.min", k, .end, #"{"disposition":-9223372036854775808}"#) { $0.disposition = .id(.min) },
            ok("disposition_desc empty", k, .end, #"{"disposition_desc":""}"#) { $0.dispositionDesc = "" },
        ]
    }

    /// Whole events with every field that belongs.
    static let whole: [EventAcceptCase] = [
        ok("every task start field", .task, .start, #"""
        {"state_id":3,"task_type":"customer info","session_id":"s-1","interaction_id":"42",
         "application_type":"orchestration","application_id":101,"resource_type":7,"resource_id":-5,
         "media_type":"voice","est_duration":460,"timestamp":"2017-04-27T10:18:00.000Z"}
        """#) {
            $0.stateID = 3; $0.type = .name("customer info"); $0.sessionID = "s-1"; $0.interactionID = "42"
            $0.applicationType = .name("orchestration"); $0.applicationID = 101; $0.resourceType = .id(7)
            $0.resourceID = -5; $0.mediaType = .name("voice"); $0.estDuration = 460; $0.timestamp = t0
        },
        ok("every service start field", .service, .start, #"""
        {"service_type":12,"session_id":"s","interaction_id":"i","application_type":1,"application_id":2,
         "resource_type":"r","resource_id":4,"media_type":"chat","est_duration":5,
         "timestamp":"2017-04-27T10:18:00Z","customer_id":"c\"1"}
        """#) {
            $0.type = .id(12); $0.sessionID = "s"; $0.interactionID = "i"; $0.applicationType = .id(1)
            $0.applicationID = 2; $0.resourceType = .name("r"); $0.resourceID = 4; $0.mediaType = .name("chat")
            $0.estDuration = 5; $0.timestamp = t0; $0.customerID = "c\"1"
        },
        ok("every state start field", .state, .start, #"{"state_type":"greeting","est_duration":30,"media_type":2,"session_id":"x"}"#) {
            $0.type = .name("greeting"); $0.estDuration = 30; $0.mediaType = .id(2); $0.sessionID = "x"
        },
        ok("every task end field", .task, .end, #"""
        {"session_id":"s","interaction_id":"i","application_type":"a","application_id":1,"resource_type":2,
         "resource_id":3,"media_type":"email","timestamp":"2017-04-27T10:48:00.000Z","disposition":"sold",
         "disposition_desc":"bought the \"S.U.V.\""}
        """#) {
            $0.sessionID = "s"; $0.interactionID = "i"; $0.applicationType = .name("a"); $0.applicationID = 1
            $0.resourceType = .id(2); $0.resourceID = 3; $0.mediaType = .name("email"); $0.timestamp = t1
            $0.disposition = .name("sold"); $0.dispositionDesc = "bought the \"S.U.V.\""
        },
        ok("escapes in standard strings are decoded", .task, .start, #"{"session_id":"a\/b\u0001\n\"\\","task_type":"\u00e9"}"#) {
            $0.sessionID = "a/b\u{1}\n\"\\"; $0.type = .name("\u{E9}")
        },
        ok("an escaped standard key is the standard key", .task, .start, #"{"task\u005ftype":"x"}"#) { $0.type = .name("x") },
    ]

    static let accepted: [EventAcceptCase] = resourceLevel + eventLevel + lengths + timestamps + endFields + whole

    // MARK: The vendor's example (seed page), fixed into valid JSON

    /// The `Proposal` array as laid out on the seed page, prices without the space.
    static let seedProposal = """
    [
    \t{
    \t   "car type":"cabriolet",
    \t   "price":25000,
    \t   "comments":"200 cv, hardtop"
    \t},
    \t{
    \t   "car type":"S.U.V.",
    \t   "price":70000,
    \t   "comments":"4wd, leather seats"
    \t}
      ]
    """

    static let seedBody = """
    {
     "task_type":"customer info",
       "question3":"will be better with cable tv and on-demand video",
      "Proposal": \(seedProposal)
    }
    """

    static let seedExtensions = #""question3":"will be better with cable tv and on-demand video","Proposal":"# + seedProposal

    // MARK: Extensions

    static func ext(
        _ name: String, _ kind: ResourceKind, _ phase: EventPhase, _ body: String, _ extensions: String,
        _ set: (inout Event) -> Void = { _ in }
    ) -> EventExtensionCase {
        var e = event(kind, phase, set)
        e.extensions = Array(extensions.utf8)
        return EventExtensionCase(name: name, kind: kind, phase: phase, body: body, extensions: extensions, expected: e)
    }

    static func ext(_ name: String, _ body: String, _ extensions: String) -> EventExtensionCase {
        ext(name, .task, .start, body, extensions)
    }

    static let extensionCases: [EventExtensionCase] = [
        ext("no extension", "{}", ""),
        ext("one member", #"{"a":1}"#, #""a":1"#),
        ext("order as sent, not sorted; whitespace between members dropped", " {\t\"b\" : 1 ,\r\n \"a\"\n:\n2 } ", #""b":1,"a":2"#),
        ext("an integer beyond 64 bits", #"{"big":12345678901234567890}"#, #""big":12345678901234567890"#),
        ext("number spellings", #"{"e":1.0e+2,"z":-0,"f":-0.0,"E":1E-7,"d":100.00}"#, #""e":1.0e+2,"z":-0,"f":-0.0,"E":1E-7,"d":100.00"#),
        ext("escaped keys stay escaped", #"{"k\u0041y":"v","\"q\"":1,"a\/b":2}"#, #""k\u0041y":"v","\"q\"":1,"a\/b":2"#),
        ext("escaped string values stay escaped", #"{"s":"\u00e9\n\/\ud83d\ude00"}"#, #""s":"\u00e9\n\/\ud83d\ude00""#),
        ext("whitespace inside a nested value is kept", "{\"n\": { \"k\" : [ 1 , 2 ] ,\n \"m\" : {} } }", "\"n\":{ \"k\" : [ 1 , 2 ] ,\n \"m\" : {} }"),
        ext("literals and empty containers", #"{"t":true,"f":false,"nul":null,"arr":[],"obj":{}}"#, #""t":true,"f":false,"nul":null,"arr":[],"obj":{}"#),
        ext("raw non-ASCII key and value", #"{"é":"😀"}"#, #""é":"😀""#),
        ext("keys are case-sensitive: Task_Type is an extension", #"{"Task_Type":1,"TIMESTAMP":"x"}"#, #""Task_Type":1,"TIMESTAMP":"x""#),
        ext("a key with spaces", #"{" a ":1,"":2}"#, #"" a ":1,"":2"#),
        ext("standard fields are taken out, extensions keep their order", .task, .start,
            #"{"x":1, "task_type":"t", "y":[2], "state_id":3, "z":{"q":3}}"#, #""x":1,"y":[2],"z":{"q":3}"#) {
            $0.type = .name("t"); $0.stateID = 3
        },
        ext("end events keep extensions", .service, .end, #"{"disposition":1,"reason":"done"}"#, #""reason":"done""#) {
            $0.disposition = .id(1)
        },
        ext("a state start event keeps extensions", .state, .start, #"{"step":[ "a" ]}"#, #""step":[ "a" ]"#),
    ]

    // MARK: Refused bodies

    static func no(
        _ name: String, _ kind: ResourceKind, _ phase: EventPhase, _ body: String, mentions: String
    ) -> EventRefusalCase {
        EventRefusalCase(name: name, kind: kind, phase: phase, body: Array(body.utf8), mentions: mentions)
    }

    /// Wrong JSON type for each kind of field.
    static let wrongTypes: [EventRefusalCase] = {
        var rows: [EventRefusalCase] = []
        let longOrString: [(String, ResourceKind, EventPhase)] = [
            ("task_type", .task, .start), ("state_type", .state, .start), ("service_type", .service, .start),
            ("application_type", .task, .start), ("resource_type", .state, .end), ("media_type", .service, .end),
            ("disposition", .task, .end),
        ]
        let notLongOrString = [
            "true", "false", "1.5", "1e2", "-0.0", "1.0", "{}", "[]", "null", #"{"id":1}"#, #"["a"]"#,
            "9223372036854775808", "-9223372036854775809", "18446744073709551616",
        ]
        for (key, kind, phase) in longOrString {
            for value in notLongOrString {
                rows.append(no("\(key) = \(value)", kind, phase, object(key, value), mentions: key))
            }
        }
        let integers: [(String, ResourceKind, EventPhase)] = [
            ("state_id", .task, .start), ("application_id", .task, .start), ("resource_id", .service, .end),
            ("est_duration", .state, .start),
        ]
        for (key, kind, phase) in integers {
            for value in [#""3""#, "1.5", "1.0", "1e0", "true", "null", "{}", "[]"] {
                rows.append(no("\(key) = \(value)", kind, phase, object(key, value), mentions: key))
            }
        }
        let strings: [(String, ResourceKind, EventPhase)] = [
            ("session_id", .task, .start), ("interaction_id", .state, .end), ("customer_id", .service, .start),
            ("contact_key", .service, .start), ("disposition_desc", .task, .end),
        ]
        for (key, kind, phase) in strings {
            for value in ["1", "0", "true", "null", "{}", "[]", "1.5"] {
                rows.append(no("\(key) = \(value)", kind, phase, object(key, value), mentions: key))
            }
        }
        for value in ["1493288280000", "null", "true", "{}", "[]", "1.5"] {
            rows.append(no("timestamp = \(value)", .task, .start, object("timestamp", value), mentions: "timestamp"))
            rows.append(no("timestamp = \(value)", .service, .end, object("timestamp", value), mentions: "timestamp"))
        }
        return rows
    }()

    static let outOfRange: [EventRefusalCase] = [
        no("state_id 0", .task, .start, #"{"state_id":0}"#, mentions: "state_id"),
        no("state_id -0", .task, .start, #"{"state_id":-0}"#, mentions: "state_id"),
        no("state_id -1", .task, .start, #"{"state_id":-1}"#, mentions: "state_id"),
        no("state_id 2147483648", .task, .start, #"{"state_id":2147483648}"#, mentions: "state_id"),
        no("state_id 4294967297 (wraps to 1 if truncated)", .task, .start, #"{"state_id":4294967297}"#, mentions: "state_id"),
        no("state_id Int64.max", .task, .start, #"{"state_id":9223372036854775807}"#, mentions: "state_id"),
        no("est_duration -1", .task, .start, #"{"est_duration":-1}"#, mentions: "est_duration"),
        no("est_duration 2147483648", .task, .start, #"{"est_duration":2147483648}"#, mentions: "est_duration"),
        no("est_duration 4294967296 (wraps to 0 if truncated)", .service, .start, #"{"est_duration":4294967296}"#, mentions: "est_duration"),
        no("est_duration Int64.min", .state, .start, #"{"est_duration":-9223372036854775808}"#, mentions: "est_duration"),
        no("application_id 2^63", .task, .start, #"{"application_id":9223372036854775808}"#, mentions: "application_id"),
        no("application_id -2^63-1", .task, .end, #"{"application_id":-9223372036854775809}"#, mentions: "application_id"),
        no("resource_id 20 digits", .state, .start, #"{"resource_id":99999999999999999999}"#, mentions: "resource_id"),
    ]

    static let tooLong: [EventRefusalCase] = [
        no("session_id 33 ASCII", .task, .start, object("session_id", quoted(repeated("a", 33))), mentions: "session_id"),
        no("session_id 33 é", .task, .start, object("session_id", quoted(repeated("\u{E9}", 33))), mentions: "session_id"),
        no("session_id 33 emoji", .service, .end, object("session_id", quoted(repeated("😀", 33))), mentions: "session_id"),
        no("session_id 17 skin-toned emoji (17 Characters, 34 scalars)", .task, .start,
           object("session_id", quoted(repeated("👍🏽", 17))), mentions: "session_id"),
        no("session_id 17 decomposed é (17 Characters, 34 scalars)", .state, .start,
           object("session_id", quoted(repeated("e\u{301}", 17))), mentions: "session_id"),
        no("session_id 33 escaped \\u00e9", .task, .end, object("session_id", quoted(repeated(#"\u00e9"#, 33))), mentions: "session_id"),
        no("interaction_id 51 ASCII", .task, .start, object("interaction_id", quoted(repeated("x", 51))), mentions: "interaction_id"),
        no("interaction_id 51 é", .state, .end, object("interaction_id", quoted(repeated("\u{E9}", 51))), mentions: "interaction_id"),
        no("interaction_id 26 skin-toned emoji (52 scalars)", .service, .start,
           object("interaction_id", quoted(repeated("👍🏽", 26))), mentions: "interaction_id"),
        no("disposition_desc 65 ASCII", .task, .end, object("disposition_desc", quoted(repeated("d", 65))), mentions: "disposition_desc"),
        no("disposition_desc 65 é", .service, .end, object("disposition_desc", quoted(repeated("\u{E9}", 65))), mentions: "disposition_desc"),
        no("disposition_desc 65 emoji", .state, .end, object("disposition_desc", quoted(repeated("😀", 65))), mentions: "disposition_desc"),
        no("disposition_desc 33 skin-toned emoji (66 scalars)", .task, .end,
           object("disposition_desc", quoted(repeated("👍🏽", 33))), mentions: "disposition_desc"),
    ]

    static let badTimestamps: [EventRefusalCase] = [
        "", "2017-04-27", "2017-04-27 10:18:00Z", "2017-04-27T10:18:00", "2017-02-29T00:00:00Z",
        "2017-04-27T24:00:00Z", "2017-04-27T10:60:00Z", "2017-04-27T10:18:60Z", "2017-04-27T10:18:00.Z",
        "2017-04-27T10:18:00.1234567890Z", "2017-04-27T10:18:00+2:00", "2017-04-27T10:18:00+24:00",
        "27/04/2017 10:18", "2017-04-27T10:18:00.000Z ", " 2017-04-27T10:18:00.000Z", "2017-13-01T00:00:00Z",
    ].flatMap { (text: String) -> [EventRefusalCase] in
        [
            no("timestamp \"\(text)\"", .task, .start, object("timestamp", quoted(text)), mentions: "timestamp"),
            no("timestamp \"\(text)\"", .state, .end, object("timestamp", quoted(text)), mentions: "timestamp"),
        ]
    }

    /// Field-placement decisions of the code.
    static let misplaced: [EventRefusalCase] = [
        // state_id: task start events only.
        no("state_id names the state itself", .state, .start, #"{"state_id":1}"#, mentions: "state_id"),
        no("state_id names the state itself (end)", .state, .end, #"{"state_id":1}"#, mentions: "state_id"),
        no("state_id in a service event", .service, .start, #"{"state_id":1}"#, mentions: "state_id"),
        no("state_id in a service end event", .service, .end, #"{"state_id":1}"#, mentions: "state_id"),
        no("state_id in a task end event", .task, .end, #"{"state_id":1}"#, mentions: "state_id"),
        // The type key must be the kind's own.
        no("task_type in a service event", .service, .start, #"{"task_type":"x"}"#, mentions: "task_type"),
        no("task_type in a state event", .state, .start, #"{"task_type":"x"}"#, mentions: "task_type"),
        no("state_type in a task event", .task, .start, #"{"state_type":1}"#, mentions: "state_type"),
        no("state_type in a service event", .service, .start, #"{"state_type":1}"#, mentions: "state_type"),
        no("service_type in a task event", .task, .start, #"{"service_type":"x"}"#, mentions: "service_type"),
        no("service_type in a state event", .state, .start, #"{"service_type":"x"}"#, mentions: "service_type"),
        no("task_type in a service end event", .service, .end, #"{"task_type":"x"}"#, mentions: "task_type"),
        // The type is set at start only.
        no("task_type in a task end event", .task, .end, #"{"task_type":"x"}"#, mentions: "task_type"),
        no("state_type in a state end event", .state, .end, #"{"state_type":"x"}"#, mentions: "state_type"),
        no("service_type in a service end event", .service, .end, #"{"service_type":"x"}"#, mentions: "service_type"),
        // est_duration: start only.
        no("est_duration in a task end event", .task, .end, #"{"est_duration":1}"#, mentions: "est_duration"),
        no("est_duration in a state end event", .state, .end, #"{"est_duration":1}"#, mentions: "est_duration"),
        no("est_duration in a service end event", .service, .end, #"{"est_duration":1}"#, mentions: "est_duration"),
        // customer_id / contact_key: service start only, never both.
        no("customer_id in a task event", .task, .start, #"{"customer_id":"c"}"#, mentions: "customer_id"),
        no("customer_id in a state event", .state, .start, #"{"customer_id":"c"}"#, mentions: "customer_id"),
        no("customer_id in a task end event", .task, .end, #"{"customer_id":"c"}"#, mentions: "customer_id"),
        no("customer_id in a service end event", .service, .end, #"{"customer_id":"c"}"#, mentions: "customer_id"),
        no("contact_key in a task event", .task, .start, #"{"contact_key":"k"}"#, mentions: "contact_key"),
        no("contact_key in a state end event", .state, .end, #"{"contact_key":"k"}"#, mentions: "contact_key"),
        no("contact_key in a service end event", .service, .end, #"{"contact_key":"k"}"#, mentions: "contact_key"),
        no("customer_id and contact_key together", .service, .start, #"{"customer_id":"c","contact_key":"k"}"#, mentions: "contact_key"),
        no("contact_key and customer_id together", .service, .start, #"{"contact_key":"k","customer_id":"c"}"#, mentions: "customer_id"),
        // disposition / disposition_desc: end events only.
        no("disposition in a task start event", .task, .start, #"{"disposition":"sold"}"#, mentions: "disposition"),
        no("disposition in a state start event", .state, .start, #"{"disposition":1}"#, mentions: "disposition"),
        no("disposition in a service start event", .service, .start, #"{"disposition":"x"}"#, mentions: "disposition"),
        no("disposition_desc in a task start event", .task, .start, #"{"disposition_desc":"d"}"#, mentions: "disposition_desc"),
        no("disposition_desc in a state start event", .state, .start, #"{"disposition_desc":"d"}"#, mentions: "disposition_desc"),
        no("disposition_desc in a service start event", .service, .start, #"{"disposition_desc":"d"}"#, mentions: "disposition_desc"),
    ]

    /// Reserved keys, in every kind and phase, whatever their value.
    static let reserved: [EventRefusalCase] = {
        let keys = [
            "service_id", "task_id", "started", "completed",
            "active_states", "completed_states", "active_tasks", "completed_tasks",
        ]
        let values = ["1", "{}", "null", #""x""#, "[]", "15928"]
        var rows: [EventRefusalCase] = []
        for (i, (kind, phase)) in kindsAndPhases.enumerated() {
            for (j, key) in keys.enumerated() {
                let value = values[(i + j) % values.count]
                rows.append(no("\(key) = \(value)", kind, phase, object(key, value), mentions: key))
            }
        }
        // After valid members, and spelled with an escape.
        rows.append(no("task_id after valid members", .task, .start, #"{"task_type":"x","a":1,"task_id":15928}"#, mentions: "task_id"))
        rows.append(no("escaped task\\u005fid", .task, .start, #"{"task\u005fid":1}"#, mentions: "task_id"))
        rows.append(no("escaped service\\u005Fid", .service, .end, #"{"service\u005Fid":1}"#, mentions: "service_id"))
        return rows
    }()
}

// MARK: - Tests

private func expectRefusal(_ row: EventRefusalCase, sourceLocation: SourceLocation = #_sourceLocation) {
    switch EventFixtures.parse(row.body, row.kind, row.phase, limits: row.limits) {
    case .success(let event):
        Issue.record("accepted, expected \(row.status): \(event)", sourceLocation: sourceLocation)
    case .failure(let error):
        #expect(error.status == row.status, sourceLocation: sourceLocation)
        #expect(error.exception == row.exception, sourceLocation: sourceLocation)
        #expect(error.message.contains(row.mentions), "message \(error.message)", sourceLocation: sourceLocation)
        #expect(!error.message.contains("\n"), sourceLocation: sourceLocation)
    }
}

@Suite("Event: accepted standard fields")
struct EventAcceptTests {
    @Test("each standard field is accepted where it belongs, and its exact value lands in its property",
          arguments: EventFixtures.accepted)
    func accepted(_ row: EventAcceptCase) throws {
        let event = try EventFixtures.parse(row.body, row.kind, row.phase).get()
        #expect(event == row.expected)
        #expect(EventFixtures.stringBytes(event) == EventFixtures.stringBytes(row.expected))
        #expect(event.kind == row.kind)
        #expect(event.phase == row.phase)
        #expect(event.extensions.isEmpty)
    }

    @Test("timestamps are normalised to the canonical UTC form")
    func timestampText() throws {
        let event = try EventFixtures.parse(#"{"timestamp":"2017-04-27T12:18:00.123456789+02:00"}"#, .task, .start).get()
        #expect(event.timestamp?.text == "2017-04-27T10:18:00.123Z")
        #expect(event.timestamp?.millisecondsSinceEpoch == 1_493_288_280_123)
    }

    @Test("the length limits are 32, 50 and 64")
    func limits() {
        #expect(FieldLimits.sessionID == 32)
        #expect(FieldLimits.interactionID == 50)
        #expect(FieldLimits.dispositionDesc == 64)
    }
}

@Suite("Event: refused fields")
struct EventRefusalTests {
    @Test("a field of the wrong JSON type is refused with 400 naming the key", arguments: EventFixtures.wrongTypes)
    func wrongType(_ row: EventRefusalCase) { expectRefusal(row) }

    @Test("a value out of range is refused with 400 naming the key", arguments: EventFixtures.outOfRange)
    func outOfRange(_ row: EventRefusalCase) { expectRefusal(row) }

    @Test("a string longer than its limit in Unicode scalars is refused", arguments: EventFixtures.tooLong)
    func tooLong(_ row: EventRefusalCase) { expectRefusal(row) }

    @Test("a timestamp that is not an RFC 3339 date-time is refused", arguments: EventFixtures.badTimestamps)
    func badTimestamp(_ row: EventRefusalCase) { expectRefusal(row) }

    @Test("a field sent in a kind or phase where it does not belong is refused", arguments: EventFixtures.misplaced)
    func misplaced(_ row: EventRefusalCase) { expectRefusal(row) }

    @Test("keys that name the resource or a member of its representation are always refused",
          arguments: EventFixtures.reserved)
    func reserved(_ row: EventRefusalCase) { expectRefusal(row) }

    @Test("refusal messages say what is wrong", arguments: [
        (ResourceKind.task, EventPhase.start, #"{"state_id":0}"#,
         "state_id must be a 32-bit integer from 1 to 2147483647, got 0"),
        (.task, .start, #"{"task_type":true}"#, "task_type must be a 64-bit integer or a string, got true"),
        (.task, .start, #"{"task_type":1.5}"#, "task_type must be a 64-bit integer or a string, got a number with a fraction or exponent"),
        (.task, .start, #"{"application_id":9223372036854775808}"#, "application_id must be a 64-bit integer, got an integer beyond 64 bits"),
        (.task, .start, #"{"est_duration":-1}"#, "est_duration must be a 32-bit integer from 0 to 2147483647, got -1"),
        (.task, .start, #"{"session_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#, "session_id must be at most 32 characters, got 33"),
        (.task, .start, #"{"session_id":null}"#, "session_id must be a string, got null"),
        (.service, .start, #"{"task_type":"x"}"#, "task_type is not a field of a service event; use service_type"),
        (.state, .start, #"{"state_id":1}"#, "state_id names the state itself and cannot be sent in its body"),
        (.service, .start, #"{"state_id":1}"#, "state_id is a field of task events only"),
        (.task, .end, #"{"state_id":1}"#, "state_id is set when the task starts and cannot be sent when it ends"),
        (.task, .start, #"{"customer_id":"c"}"#, "customer_id is a field of service events only"),
        (.service, .start, #"{"customer_id":"c","contact_key":"k"}"#, "customer_id and contact_key are alternatives: send one of them"),
        (.task, .start, #"{"disposition":1}"#, "disposition is a field of end events only"),
        (.task, .start, #"{"task_id":1}"#, "task_id names the task itself and cannot be sent in its body"),
        (.task, .start, #"{"started":{}}"#, "started names the task itself and cannot be sent in its body"),
        (.task, .start, #"{"service_id":1}"#, "service_id is a member of representations and cannot be sent in a body"),
        (.service, .end, #"{"service_id":1}"#, "service_id names the service itself and cannot be sent in its body"),
        (.task, .start, #"{"timestamp":5}"#, "timestamp must be a string such as 2017-04-27T10:18:00.000Z, got 5"),
        (.task, .start, #"{"a":1,"a":2}"#, #"duplicate key "a""#),
        (.task, .start, "[]", "JSON body must be an object"),
    ])
    func messages(_ kind: ResourceKind, _ phase: EventPhase, _ body: String, _ message: String) {
        #expect(EventFixtures.parse(body, kind, phase) == .failure(.validation(message)))
    }

    @Test("the first offending member is the one reported")
    func firstOffender() {
        let result = EventFixtures.parse(#"{"session_id":1,"task_type":true,"service_id":3}"#, .task, .start)
        #expect(result == .failure(.validation("session_id must be a string, got 1")))
    }
}

@Suite("Event: bodies that are not one valid JSON object")
struct EventBodyTests {
    @Test("malformed JSON is refused with 400", arguments: [
        "", " ", "{", "}", #"{"a":1,}"#, #"{"a" 1}"#, "{'a':1}", "{a:1}", #"{"a":01}"#, #"{"a":1}x"#,
        #"{"a":1}{}"#, #"{"a":.5}"#, #"{"a":NaN}"#, "{\"a\":\"\u{1}\"}", #"{"a":"\x"}"#, #"{"a":tru}"#,
        #"{"a":"\ud800"}"#, #"{"a":[1,]}"#, #"{"a":1"#, #"{"task_type":"x",}"#, "{\"a\":1}\u{0}",
    ])
    func malformed(_ text: String) {
        expectRefusal(EventRefusalCase(name: text, kind: .task, phase: .start, body: Array(text.utf8), mentions: "JSON"))
    }

    @Test("malformed bytes are refused with 400", arguments: [
        [0xEF, 0xBB, 0xBF] + Array("{}".utf8),                               // byte order mark
        Array(#"{"a":""#.utf8) + [0xFF] + Array(#""}"#.utf8),                 // invalid UTF-8
        Array(#"{"a":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8),           // overlong
        Array(#"{"session_id":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8),  // encoded surrogate
    ] as [[UInt8]])
    func malformedBytes(_ bytes: [UInt8]) {
        expectRefusal(EventRefusalCase(name: "bytes", kind: .task, phase: .start, body: bytes, mentions: "malformed JSON"))
    }

    @Test("a body that is not an object is refused with 400", arguments: ["[]", "[{}]", #""x""#, "1", "null", "true", "[{\"a\":1}]"])
    func notAnObject(_ text: String) {
        #expect(EventFixtures.parse(text, .service, .start) == .failure(.validation("JSON body must be an object")))
    }

    @Test("a repeated key is refused with 400, at any depth and however it is spelled", arguments: [
        (#"{"a":1,"a":2}"#, "a"),
        (#"{"a":1,"\u0061":2}"#, "a"),
        (#"{"task_type":"x","task_type":"x"}"#, "task_type"),
        (#"{"task_type":"x","task\u005ftype":"y"}"#, "task_type"),
        (#"{"a":{"b":1,"b":2}}"#, "b"),
        (#"{"a":[{"k":1,"k":1}]}"#, "k"),
    ])
    func duplicate(_ text: String, _ key: String) {
        #expect(EventFixtures.parse(text, .task, .start) == .failure(.validation(#"duplicate key ""# + key + #"""#)))
    }

    @Test("a body over maxBytes is refused with 413 before it is parsed")
    func tooLarge() throws {
        let limits = JSONLimits(maxBytes: 20, maxDepth: 64)
        let exact = #"{"session_id":"abc"}"#  // 20 bytes
        #expect(exact.utf8.count == 20)
        let event = try EventFixtures.parse(Array(exact.utf8), .task, .start, limits: limits).get()
        #expect(event.sessionID == "abc")
        for body in [#"{"session_id":"abcd"}"#, String(repeating: "{", count: 21)] {
            #expect(EventFixtures.parse(Array(body.utf8), .task, .start, limits: limits)
                == .failure(ContextError(status: 413, exception: "PayloadTooLargeException", message: "body larger than 20 bytes")))
        }
    }

    @Test("the default size limit is 1 MiB")
    func defaultSize() throws {
        let filler = 1 << 20 - 8  // {"a":"…"} is 8 bytes around the filler
        let exact = Array(#"{"a":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: filler) + Array(#""}"#.utf8)
        #expect(exact.count == 1 << 20)
        let event = try EventFixtures.parse(exact, .task, .start).get()
        #expect(event.extensions.count == 1 << 20 - 2)
        let over = Array(#"{"a":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: filler + 1) + Array(#""}"#.utf8)
        let refused = EventFixtures.parse(over, .task, .start)
        #expect(refused == .failure(.payloadTooLarge(limit: 1 << 20)))
        #expect((try? refused.get()) == nil)
        if case .failure(let error) = refused {
            #expect(error.status == 413)
            #expect(error.exception == "PayloadTooLargeException")
        }
    }

    @Test("nesting deeper than maxDepth is refused with 400")
    func tooDeep() throws {
        let limits = JSONLimits(maxBytes: 1 << 20, maxDepth: 3)
        for body in [#"{"a":[[1]]}"#, #"{"a":{"b":{}}}"#] {
            #expect(throws: Never.self) { try EventFixtures.parse(Array(body.utf8), .task, .start, limits: limits).get() }
        }
        for body in [#"{"a":[[[1]]]}"#, #"{"a":{"b":{"c":{}}}}"#, #"{"a":[{"b":[]}]}"#] {
            #expect(EventFixtures.parse(Array(body.utf8), .task, .start, limits: limits)
                == .failure(.validation("JSON nesting deeper than 3")))
        }
    }

    @Test("the default depth limit is 64")
    func defaultDepth() throws {
        func nesting(_ depth: Int) -> [UInt8] {
            Array(("{\"a\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}").utf8)
        }
        let ok = try EventFixtures.parse(nesting(64), .task, .start).get()
        #expect(ok.extensions == Array(("\"a\":" + String(repeating: "[", count: 63) + String(repeating: "]", count: 63)).utf8))
        #expect(EventFixtures.parse(nesting(65), .task, .start) == .failure(.validation("JSON nesting deeper than 64")))
    }
}

@Suite("Event: the vendor's Start Task example")
struct EventSeedTests {
    @Test("the seed page's body, fixed into valid JSON, keeps Proposal byte for byte")
    func seedExample() throws {
        let event = try EventFixtures.parse(EventFixtures.seedBody, .task, .start).get()
        var expected = Event(kind: .task, phase: .start)
        expected.type = .name("customer info")
        expected.extensions = Array(EventFixtures.seedExtensions.utf8)
        #expect(event == expected)
        #expect(String(decoding: event.extensions, as: UTF8.self) == EventFixtures.seedExtensions)
        // The Proposal value is exactly the bytes sent, tabs and newlines included.
        let proposal = Array(EventFixtures.seedProposal.utf8)
        #expect(Array(event.extensions.suffix(proposal.count)) == proposal)
        #expect(event.extensions.contains(UInt8(ascii: "\t")))
        // Two objects with the three keys each.
        let wrapped = try StrictJSON.readObject(Array(("{\"p\":" + EventFixtures.seedProposal + "}").utf8))
        #expect(wrapped.map(\.value) == [.array])
    }
}

@Suite("Event: extensions")
struct EventExtensionTests {
    @Test("extensions are kept in order, keys and values byte for byte", arguments: EventFixtures.extensionCases)
    func kept(_ row: EventExtensionCase) throws {
        let event = try EventFixtures.parse(row.body, row.kind, row.phase).get()
        #expect(String(decoding: event.extensions, as: UTF8.self) == row.extensions)
        #expect(event.extensions == Array(row.extensions.utf8))
        #expect(event == row.expected)
    }
}
