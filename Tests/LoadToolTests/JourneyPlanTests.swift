import ContextModel
import Testing
@testable import LoadTool

@Suite("Journey plan")
struct JourneyPlanTests {
    let steps = JourneyPlan.standard.steps

    @Test("The sizing journey is 33 calls: 1 service, 5 states, 10 tasks started and completed, 1 query")
    func counts() {
        #expect(steps.count == 33)
        let count = { (m: LoadMethod) in steps.filter { $0.method == m }.count }
        #expect(count(.startService) == 1)
        #expect(count(.startState) == 5)
        #expect(count(.startTask) == 10)
        #expect(count(.completeTask) == 10)
        #expect(count(.completeState) == 5)
        #expect(count(.queryService) == 1)
        #expect(count(.completeService) == 1)
        #expect(steps.first?.method == .startService)
        #expect(steps.last?.method == .completeService)
    }

    @Test("Every id a call names comes from an earlier answer, and each resource ends once")
    func idsComeFromEarlierAnswers() throws {
        var startedStates: Set<Int> = [], endedStates: Set<Int> = []
        var startedTasks: Set<Int> = [], endedTasks: Set<Int> = []
        for step in steps {
            switch step.method {
            case .startState:
                let s = try #require(step.state)
                #expect(startedStates.insert(s).inserted)
            case .startTask:
                let s = try #require(step.state), t = try #require(step.task)
                #expect(startedStates.contains(s) && !endedStates.contains(s), "a task starts in an open state")
                #expect(startedTasks.insert(t).inserted)
            case .completeTask:
                let t = try #require(step.task)
                #expect(startedTasks.contains(t))
                #expect(endedTasks.insert(t).inserted)
            case .completeState:
                let s = try #require(step.state)
                #expect(startedStates.contains(s))
                #expect(endedStates.insert(s).inserted)
            default:
                break
            }
        }
        #expect(endedStates.count == JourneyPlan.stateCount)
        #expect(endedTasks.count == JourneyPlan.taskCount)
    }

    @Test("The agent desktop reads the service after the IVR states")
    func queryAfterSecondState() throws {
        let query = try #require(steps.firstIndex { $0.method == .queryService })
        #expect(steps[query - 1].method == .completeState)
        #expect(steps[query - 1].state == 1)
    }

    @Test("A journey carries about 10 kB of JSON, as the vendor's sizing says")
    func size() {
        let total = steps.reduce(0) { sum, step in
            let members = RESTCodec.members(step.content, method: step.method)
            let stateID: Int32 = step.method == .startTask ? 3 : 0
            return sum + (step.method == .queryService ? 0 : RESTCodec.body(members: members, stateID: stateID).count)
        }
        #expect((9_000...11_000).contains(total), "a journey's bodies total \(total) bytes")
    }

    @Test("Every body is an event the contract accepts")
    func bodiesValidate() throws {
        for step in steps where step.method != .queryService {
            let (kind, phase): (ResourceKind, EventPhase) = switch step.method {
            case .startService: (.service, .start)
            case .completeService: (.service, .end)
            case .startState: (.state, .start)
            case .completeState: (.state, .end)
            case .startTask: (.task, .start)
            default: (.task, .end)
            }
            let body = RESTCodec.body(members: RESTCodec.members(step.content, method: step.method),
                                      stateID: step.method == .startTask ? 2 : 0)
            do {
                _ = try Event.parse(body, kind: kind, phase: phase)
            } catch {
                Issue.record("\(step.method) body refused: \(error.message): \(String(decoding: body, as: UTF8.self))")
            }
        }
        let startTask = RESTCodec.body(members: RESTCodec.members(JourneyPlan.startTaskContent, method: .startTask), stateID: 0)
        _ = try Event.parse(startTask, kind: .task, phase: .start)
    }
}
