import ContextModel
import Logging
import NIOCore
import NIOHTTP1

/// Sends the calls of one event loop to the core in batches (`POST {base}/batch`, the core's
/// group-commit extension), carrying out `BatcherStateMachine`'s decisions: no lock, no
/// thread hop, one timer. Each call's answer is exactly what its single call would have got.
///
/// Against a core without the batch endpoint (configured, or detected when it answers a
/// batch with 404) the batcher is in vendor mode: each batch's calls go singly, pipelined on
/// the pool's connections, and the queue bound, deadlines and shedding still apply. A 404
/// batch was not applied, so its calls are sent again singly. A batch lost to a broken
/// connection (or that found no connection) is resent only when every call in it carries an
/// idempotency key and the cores keep keys (README, "Exactly once"): within each call's
/// deadline, at most `maxResends` times, with backoff; the core answers a write it already
/// applied from its key. Otherwise its calls fail UNAVAILABLE (a start is not idempotent).
/// A queued call was cancelled before it was sent (its client reset the stream, or its
/// deadline passed): nothing reached the core.
struct CallCancelled: Error {}

/// The batcher's knobs, each default stated here once (`gateway serve`'s settings table reads
/// them from here). Defaults from the sweep of `gateway/bench/batch-knobs.sh` (RESULTS.md, "The
/// batcher's knobs"): throughput was the same within noise across 64–1024 items, 0–2000 µs and
/// 1–8 in flight, while latency at 10k calls/s was lowest with one batch in flight per core
/// (p50 1.3 ms against 2–3 ms with 2 or 4). Between 64 and 256 items with one in flight, CPU
/// time per call decided: 32.5–34.0 µs for 256 against 35.5–39.9 µs for 64 (larger batches at
/// peak load; at half load batches stay smaller than either bound).
public struct BatcherConfiguration: Sendable, Equatable {
    /// Calls per batch at most.
    public var maxItems = 256
    /// Encoded bytes per batch at most (the core refuses batches over 16 MiB).
    public var maxBytes = 4 << 20
    /// How long a call may wait for companions while batches are in flight.
    public var maxDelay: TimeAmount = .microseconds(500)
    /// Batches in flight per event loop; nil: one per core address. A core commits one batch
    /// at a time (one writer), so more in flight toward one core only queue there, adding
    /// latency, not throughput. In vendor mode a "batch" is a group of single calls that the
    /// core runs concurrently, and nil means enough groups for 1,024 calls in flight.
    public var maxInFlight: Int?
    /// Calls waiting per event loop before new ones are refused (RESOURCE_EXHAUSTED).
    public var maxQueued = 10_000
    /// Times a keyed call lost with its connection is sent again (its deadline permitting).
    /// Eight, with the backoff below, span about 4 s: a core restarted by its supervisor
    /// is back by then, so a write it committed before dying is answered from its key
    /// rather than failed.
    public var maxResends = 8
    /// Backoff before the first resend; doubled for each next one up to 1 s, plus jitter.
    public var resendBackoff: TimeAmount = .milliseconds(20)

    public init() {}

    /// Batches in flight with `cores` core addresses.
    func maxInFlight(cores: Int) -> Int { maxInFlight ?? max(1, cores) }
    /// Groups of single calls in flight in vendor mode (configured or detected).
    var vendorMaxInFlight: Int { maxInFlight ?? max(1, 1024 / max(1, maxItems)) }
}

package final class UpstreamBatcher {
    typealias Configuration = BatcherConfiguration

    private struct Waiting {
        var item: BatchItem
        /// Its encoded size (`BatchCodec.encodedSize`), measured once when it was queued.
        var bytes: Int
        var promise: EventLoopPromise<UpstreamResponse>
        var id: UInt64 = 0
        var deadline: NIODeadline? = nil
        var resends = 0
        /// When it joined the queue (for `cs_gateway_batch_wait_seconds`).
        var queuedAt: UInt64 = 0
    }

    let eventLoop: any EventLoop
    private let pool: UpstreamPool
    private let batchTarget: String
    /// Allocates the buffer each batch is encoded into (the HTTP request body itself).
    private let allocator = ByteBufferAllocator()
    private let logger: Logger
    private var machine: BatcherStateMachine
    private var waiting: [UInt64: Waiting] = [:]
    private var nextID: UInt64 = 1
    private var timer: Scheduled<Void>?
    /// False in vendor mode (configured, or the core answered a batch with 404): every call
    /// then goes singly.
    private(set) var batchSupported: Bool
    /// The core's base path without trailing slashes: vendor-mode calls go under it.
    private let base: String
    private let vendorMaxInFlight: Int
    private let maxResends: Int
    private let resendBackoff: TimeAmount
    /// Calls sent again after a broken connection, since start; for logs and tests.
    private(set) var resent = 0
    /// This loop's metrics (README, "Metrics"); nil: off.
    var metrics: GatewayLoopMetrics?
    /// Calls waiting for a batch now.
    var queuedCount: Int { machine.queuedCount }

    init(eventLoop: any EventLoop, pool: UpstreamPool, basePath: String, configuration: Configuration, cores: Int,
         batchSupported: Bool = true, logger: Logger) {
        self.eventLoop = eventLoop
        self.batchSupported = batchSupported
        self.pool = pool
        self.base = String(RESTRoute.trimmedBase(basePath))
        self.batchTarget = self.base + BatchCodec.path
        self.logger = logger
        self.machine = BatcherStateMachine(configuration: .init(
            configuration,
            maxInFlight: batchSupported ? configuration.maxInFlight(cores: cores) : configuration.vendorMaxInFlight))
        self.vendorMaxInFlight = configuration.vendorMaxInFlight
        self.maxResends = configuration.maxResends
        self.resendBackoff = configuration.resendBackoff
    }

    private static var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// One call of the contract. On `eventLoop` only; the future completes there.
    package func send(_ item: BatchItem, deadline: NIODeadline?) -> EventLoopFuture<UpstreamResponse> {
        enqueue(item, deadline: deadline).answer
    }

    /// A call that the caller may `cancel` with the returned ticket while it waits.
    func enqueue(_ item: BatchItem, deadline: NIODeadline?) -> (ticket: UInt64, answer: EventLoopFuture<UpstreamResponse>) {
        let id = nextID
        nextID &+= 1
        let promise = eventLoop.makePromise(of: UpstreamResponse.self)
        let now = Self.now
        let bytes: Int
        do {
            bytes = try BatchCodec.encodedSize(of: item)
        } catch {
            // A field the wire format cannot carry (over 64 KiB): this call fails alone, before
            // it could spoil a batch.
            promise.fail(UpstreamError.rejected(.validation("the call cannot be sent to the task core: \(error)")))
            return (id, promise.futureResult)
        }
        switch machine.enqueue(.init(id: id, bytes: bytes, deadline: deadline?.uptimeNanoseconds), now: now) {
        case .failure(.queueFull):
            metrics?.shedQueueFull &+= 1
            promise.fail(UpstreamError.overloaded("too many calls are waiting for the task core; retry shortly"))
        case .failure(.deadlineTooSoon):
            metrics?.shedDeadline &+= 1
            promise.fail(UpstreamError.overloaded("the call's deadline is sooner than the task core is answering now"))
        case .success(let actions):
            waiting[id] = Waiting(item: item, bytes: bytes, promise: promise, id: id, deadline: deadline, queuedAt: now)
            perform(actions)
        }
        return (id, promise.futureResult)
    }

    /// A batch that was sent and never got an answer (its connection broke): its keyed calls
    /// go back in the queue, under their own ids (a reset still cancels them), after a
    /// backoff; the others fail with `error`. A batch that found no connection at all
    /// (`notSent`) fails at once, which is safe and tells the client quickly, unless its
    /// calls had gone out before.
    private func resendOrFail(_ calls: [Waiting], _ error: any Error) {
        let lostInFlight: Bool
        switch error as? UpstreamError {
        case .unavailable: lostInFlight = true
        case .notSent: lostInFlight = false
        default:
            for call in calls { call.promise.fail(error) }
            return
        }
        guard pool.storeKeepsKeys else {
            for call in calls { call.promise.fail(error) }
            return
        }
        for var call in calls {
            // Never sent, and never sent before either: nothing was applied, fail fast. Once a
            // call went out, it is resent until answered (the core may have applied it).
            guard lostInFlight || call.resends > 0 else {
                call.promise.fail(error)
                continue
            }
            let backoff = TimeAmount.nanoseconds(min(resendBackoff.nanoseconds << call.resends, 1_000_000_000))
            let jittered = backoff + .nanoseconds(Int64.random(in: 0...max(1, backoff.nanoseconds)))
            guard call.item.idempotencyKey != nil, call.resends < maxResends,
                  call.deadline.map({ NIODeadline.now() + jittered < $0 }) ?? true else {
                call.promise.fail(error)
                continue
            }
            call.resends += 1
            call.item.keyIsFresh = false  // it may be stored now: the core must look it up
            eventLoop.assumeIsolated().scheduleTask(in: jittered) {
                switch self.machine.enqueue(.init(id: call.id, bytes: call.bytes,
                                                  deadline: call.deadline?.uptimeNanoseconds), now: Self.now) {
                case .failure:
                    call.promise.fail(error)
                case .success(let actions):
                    self.resent += 1
                    self.logger.debug("resending a keyed call lost with its connection",
                                      metadata: ["attempt": "\(call.resends)", "key": "\(call.item.idempotencyKey ?? "")"])
                    call.queuedAt = Self.now
                    self.waiting[call.id] = call
                    self.perform(actions)
                }
            }
        }
    }

    /// Calls cancelled while still queued (never sent), since start; for logs and tests.
    private(set) var cancelledBeforeSend = 0

    /// The call's client went away (RST_STREAM) or its deadline passed: if it still waits,
    /// it leaves the queue now and is never sent; its answer fails with `CallCancelled`. Once
    /// sent, nothing can be taken back: its answer goes to nobody. On `eventLoop` only.
    func cancel(_ ticket: UInt64) {
        guard let actions = machine.cancel(ticket, now: Self.now) else { return }
        cancelledBeforeSend += 1
        waiting.removeValue(forKey: ticket)?.promise.fail(CallCancelled())
        perform(actions)
    }

    private func perform(_ actions: BatcherStateMachine.Actions) {
        for id in actions.expired {
            waiting.removeValue(forKey: id)?.promise.fail(UpstreamError.deadlineExceeded)
        }
        for batch in actions.send {
            let calls = batch.compactMap { waiting.removeValue(forKey: $0.id) }
            send(batch: calls)
        }
        if actions.cancelTimer {
            timer?.cancel()
            timer = nil
        }
        if let at = actions.armTimer {
            timer?.cancel()
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(at)) { [weak self] in
                guard let self else { return }
                self.timer = nil
                self.perform(self.machine.timerFired(now: Self.now))
            }
        }
    }

    private func send(batch calls: [Waiting]) {
        let started = Self.now
        if let metrics {
            metrics.batches &+= 1
            metrics.batchItems.record(Int64(calls.count))
            for call in calls { metrics.batchWait.record(Int64(started &- call.queuedAt)) }
        }
        guard batchSupported else {
            // Vendor mode: the calls go singly; the batch is done when all have answered.
            var left = calls.count
            for call in calls {
                let answer = sendSingly(call.item, deadline: call.deadline)
                call.promise.completeWith(answer)
                answer.assumeIsolated().whenComplete { _ in
                    left -= 1
                    if left == 0 {
                        let now = Self.now
                        self.metrics?.batchRoundTrip.record(Int64(now &- started))
                        self.perform(self.machine.batchCompleted(roundTrip: now &- started, now: now))
                    }
                }
            }
            return
        }
        // Encoded straight into the buffer that goes out as the HTTP request body, sized once.
        var size = BatchCodec.headerBytes
        for call in calls { size += call.bytes }
        var body = allocator.buffer(capacity: size)
        do {
            try BatchCodec.appendRequestHeader(count: calls.count, to: &body)
            for call in calls { try BatchCodec.appendItem(call.item, to: &body) }
        } catch {
            // Unreachable: every item was measured (and its fields checked) when queued.
            let status = ContextError.internalError("the batch cannot be encoded: \(error)")
            for call in calls { call.promise.fail(UpstreamError.rejected(status)) }
            perform(machine.batchCompleted(roundTrip: 0, now: Self.now))
            return
        }
        let request = UpstreamRequest(method: .POST, target: batchTarget, body: body, contentType: BatchCodec.contentType)
        // The batch may wait for a connection as long as its last call may wait: past that,
        // every call in it has been answered DEADLINE_EXCEEDED, and it is better not sent.
        let deadline = calls.allSatisfy({ $0.deadline != nil }) ? calls.lazy.compactMap(\.deadline).max() : nil
        pool.send(request, deadline: deadline).assumeIsolated().whenComplete { result in
            let now = Self.now
            self.metrics?.batchRoundTrip.record(Int64(now &- started))
            switch result {
            case .success(let response) where response.status == 200:
                self.deliver(response, to: calls)
            case .success(let response) where response.status == 404:
                // A core without the batch extension (vendor mode): nothing was applied. Every
                // batch answered 404 falls back, also those already in flight when the first
                // 404 switched the mode.
                if self.batchSupported {
                    self.logger.notice("the task core has no batch endpoint; sending each call on its own")
                    self.batchSupported = false
                    self.perform(self.machine.setMaxInFlight(self.vendorMaxInFlight, now: now))
                }
                for call in calls { call.promise.completeWith(self.sendSingly(call.item, deadline: call.deadline)) }
            case .success(let response):
                // The whole batch was refused (413, 415, 400, 503…): nothing was applied.
                self.metrics?.upstreamBatchesRejected &+= 1
                let error = UpstreamError.rejected(response.contextError)
                for call in calls { call.promise.fail(error) }
            case .failure(let error):
                self.resendOrFail(calls, error)
            }
            self.perform(self.machine.batchCompleted(roundTrip: now &- started, now: now))
        }
    }

    private func deliver(_ response: UpstreamResponse, to calls: [Waiting]) {
        let results: [BatchResult]
        do {
            // In place: each result's body is a slice of the answer (no copy).
            results = try BatchCodec.decodeResponse(response.body)
        } catch {
            // The batch may have been applied: answer UNAVAILABLE-like, never resend.
            let failure = UpstreamError.unavailable("the task core's batch answer is malformed: \(error)")
            for call in calls { call.promise.fail(failure) }
            return
        }
        guard results.count == calls.count else {
            let failure = UpstreamError.unavailable("the task core answered \(results.count) of \(calls.count) batched calls")
            for call in calls { call.promise.fail(failure) }
            return
        }
        for (call, result) in zip(calls, results) {
            call.promise.succeed(UpstreamResponse(status: result.status, location: result.location, body: result.body,
                                                  retryAfter: result.retryAfter, replayed: result.replayed))
        }
    }

    /// Vendor mode: the call on its own, pipelined on the pool's connections.
    private func sendSingly(_ item: BatchItem, deadline: NIODeadline?) -> EventLoopFuture<UpstreamResponse> {
        // A vendor core keeps no keys: only a client's own key goes along (it may honour it).
        // Real REST text for a vendor server: the route's path under the base.
        let request = UpstreamRequest(method: item.route.httpMethod, target: item.route.target(basePath: base),
                                      tenant: item.tenant, authorization: item.authorization,
                                      body: item.body,
                                      idempotencyKey: item.keyMadeByGateway ? nil : item.idempotencyKey,
                                      traceparent: item.trace?.header)
        return pool.send(request, deadline: deadline)
    }
}
