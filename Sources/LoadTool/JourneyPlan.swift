/// The standard fields (§3) and extensions of one call's event. Both encoders read it: the
/// protobuf-c request of the gRPC path and the JSON body of the REST path carry the same event.
public struct EventContent: Sendable, Equatable {
    /// `service_type` / `state_type` / `task_type`, as a name.
    public var typeName: String?
    public var customerID: String?
    public var estDuration: Int32?
    public var interactionID: String?
    public var mediaType: String?
    /// End events.
    public var disposition: String?
    public var dispositionDesc: String?
    /// The text of one JSON object, sent as is (`extensions_json`, or merged into the REST body).
    public var extensionsJSON: String?

    public init(typeName: String? = nil, customerID: String? = nil, estDuration: Int32? = nil,
                interactionID: String? = nil, mediaType: String? = nil, disposition: String? = nil,
                dispositionDesc: String? = nil, extensionsJSON: String? = nil) {
        self.typeName = typeName
        self.customerID = customerID
        self.estDuration = estDuration
        self.interactionID = interactionID
        self.mediaType = mediaType
        self.disposition = disposition
        self.dispositionDesc = dispositionDesc
        self.extensionsJSON = extensionsJSON
    }
}

/// One call of a journey: which method, on which of the journey's states and tasks (their ids
/// come from earlier answers), with what content.
public struct JourneyStep: Sendable, Equatable {
    public var method: LoadMethod
    /// The journey's state (0..<states) the step starts or completes, or that a started task
    /// belongs to; nil when none.
    public var state: Int?
    /// The journey's task (0..<tasks) the step starts or completes; nil when none.
    public var task: Int?
    public var content: EventContent
}

/// The vendor's sizing scenario (CONTEXT-SERVICES.md §8): one service, 5 states and 10 tasks,
/// each started and completed, about 10 kB of JSON, 33 requests. Started and completed, that
/// is 32 calls; the 33rd is a QueryService when the call reaches an agent: the agent desktop
/// reads what the IVR states gathered (a read after writes, as desktops do).
///
/// Order: StartService; then per state: StartState, two StartTask in it, their two
/// CompleteTask, CompleteState; QueryService (with every flag) after the second state; and
/// CompleteService last.
public struct JourneyPlan: Sendable {
    public static let stateCount = 5
    public static let tasksPerState = 2
    public static var taskCount: Int { stateCount * tasksPerState }
    /// The state after whose completion the agent desktop reads the service.
    static let queryAfterState = 1

    public let steps: [JourneyStep]

    public static let standard = JourneyPlan()

    private init() {
        var steps: [JourneyStep] = [JourneyStep(method: .startService, content: Self.serviceStart)]
        for s in 0..<Self.stateCount {
            steps.append(JourneyStep(method: .startState, state: s, content: Self.stateStart(s)))
            let tasks = (s * Self.tasksPerState)..<((s + 1) * Self.tasksPerState)
            for t in tasks { steps.append(JourneyStep(method: .startTask, state: s, task: t, content: Self.taskStart(t))) }
            for t in tasks { steps.append(JourneyStep(method: .completeTask, state: s, task: t, content: Self.taskEnd(t))) }
            steps.append(JourneyStep(method: .completeState, state: s, content: Self.stateEnd(s)))
            if s == Self.queryAfterState { steps.append(JourneyStep(method: .queryService, content: EventContent())) }
        }
        steps.append(JourneyStep(method: .completeService, content: Self.serviceEnd))
        self.steps = steps
    }

    // MARK: Content
    //
    // Shaped after the attached data of an IVR-to-agent voice journey (the seed page's Start
    // Task example has `question3` and a `Proposal` array): customer profile on the service,
    // menu and routing data on the states, per-task questions and proposals. Fixed per step:
    // sizes and shapes are what matter to the servers, not the values.

    /// start-task: the seed's own example body.
    public static let startTaskContent = EventContent(
        typeName: "customer info", estDuration: 460, interactionID: "00012a5b3c9d",
        extensionsJSON: #"{"question3":"will be better with cable tv and on-demand video","Proposal":[{"name":"Cable TV","price":29.99},{"name":"On-demand video","price":9.99}]}"#)

    static let serviceStart = EventContent(
        typeName: "customer journey", customerID: "cust-00482913", estDuration: 900,
        interactionID: "00012a5b3c9d0001", mediaType: "voice",
        extensionsJSON: #"{"segment":"gold","language":"en-US","ani":"+14155550123","dnis":"+18005550100","#
            + #""account":{"number":"AC-4417-0098-2231","tier":"gold","since":"2014-03-01","balance":1234.56,"currency":"USD","autopay":true,"paperless":true},"#
            + #""ivr":{"application":"main-ivr-v7","entry_point":"EP-BILLING","menu_path":["welcome","language","authenticate","main","billing"],"authentication":"pin","authenticated":true,"attempts":1},"#
            + #""crm":{"case_id":"CS-00912233","open_cases":2,"last_contact":"2024-05-30T14:22:10.000Z","nps":8,"flags":["vip","paperless","multi-line"]},"#
            + #""marketing":{"campaign":"summer-upgrade","offer_codes":["UPG20","TV-BUNDLE","FIBER-1G"],"eligible":true,"consent":{"email":true,"sms":false,"phone":true}},"#
            + #""device":{"type":"mobile","os":"iOS 17.5","app_version":"5.12.0","last_login":"2024-06-01T08:15:42.000Z"},"#
            + #""address":{"street":"1200 Market Street","city":"San Francisco","state":"CA","zip":"94102","country":"US"}}"#)

    static let serviceEnd = EventContent(
        disposition: "resolved", dispositionDesc: "billing question answered, upgrade accepted",
        extensionsJSON: #"{"survey":{"offered":true,"accepted":true,"channel":"sms"},"wrap_up_seconds":42,"summary":"customer asked about the last invoice and accepted the TV bundle upgrade","#
            + #""follow_up":false,"handled_by":["ivr","agent-2231"]}"#)

    static let stateNames = ["ivr-identification", "ivr-menu", "queue", "agent-conversation", "after-call-work"]

    static func stateStart(_ s: Int) -> EventContent {
        EventContent(
            typeName: stateNames[s], estDuration: Int32(60 * (s + 1)), mediaType: "voice",
            extensionsJSON: #"{"step":\#(s + 1),"routing":{"strategy":"skills-based","target":"billing-tier2","priority":\#(5 + s),"virtual_queue":"VQ_Billing_Gold"},"#
                + #""skills":[{"name":"billing","level":7},{"name":"english","level":9},{"name":"retention","level":4}],"#
                + #""prompts":["greeting-\#(s)","menu-\#(s)","confirm-\#(s)"],"timers":{"max_wait":180,"announce_every":45}}"#)
    }

    static func stateEnd(_ s: Int) -> EventContent {
        EventContent(disposition: "done", extensionsJSON: #"{"outcome":"passed","duration_ms":\#(12_000 + 1_350 * s)}"#)
    }

    static let taskNames = ["identify caller", "verify account", "menu choice", "billing inquiry", "wait in queue",
                            "offer callback", "explain invoice", "upgrade offer", "update address", "send summary"]

    static func taskStart(_ t: Int) -> EventContent {
        EventContent(
            typeName: taskNames[t], estDuration: Int32(30 + 15 * t), interactionID: "00012a5b3c9d0001",
            extensionsJSON: #"{"question\#(t + 1)":"how satisfied are you with step \#(t + 1) of your service today?","#
                + #""answer_options":["very","somewhat","neutral","not really","not at all"],"#
                + #""Proposal":[{"name":"Cable TV","price":29.99,"term_months":12},{"name":"On-demand video","price":9.99,"term_months":1}],"#
                + #""form":{"id":"F-\#(100 + t)","version":3,"required":true},"locale":"en-US","hints":["speak clearly","have your bill ready"]}"#)
    }

    static func taskEnd(_ t: Int) -> EventContent {
        EventContent(
            disposition: t % 3 == 0 ? "completed" : "answered", dispositionDesc: "task \(t + 1) finished",
            extensionsJSON: #"{"answer\#(t + 1)":"somewhat","confidence":0.87,"handled_in_ms":\#(900 + 37 * t),"notes":"no escalation"}"#)
    }
}
