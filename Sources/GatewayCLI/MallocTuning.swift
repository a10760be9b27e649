#if canImport(Glibc)
import Glibc

/// glibc malloc settings for a process that allocates and frees batch-sized buffers (tens to
/// hundreds of kB) thousands of times a second. By default glibc returns freed memory at the
/// top of a heap to the kernel (trim at 128 kB, madvise in thread arenas) and serves large
/// blocks with mmap (dynamic threshold from 128 kB), so the same pages were unmapped and
/// faulted back in for every batch: madvise and page faults took 5-7% of the CPU in a perf
/// profile of durable batched StartTask (RESULTS.md). Keeping up to 8 MiB of freed memory at
/// the top of each heap, and serving blocks below 8 MiB from the heap, removes that churn; a
/// quiet A/B run gave +8% throughput (durable-start-task.sh; the figure is in RESULTS.md).
/// The trim threshold was 64 MiB: each thread's arena then kept up to 64 MiB after a spike,
/// which `malloc_trim` cannot give back (it trims only the main arena's top), so an attack
/// left the process ~150 MiB above idle for good (issue 11). 8 MiB is still far above a
/// batch's buffers (a batch of 256 starts is about 50 kB).
/// `GLIBC_TUNABLES` set by an operator still wins, being read at startup before this runs.
enum MallocTuning {
    static func apply() {
        guard getenv("GLIBC_TUNABLES") == nil else { return }
        // mallopt is declared in <malloc.h>, which Swift's Glibc module does not import.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }  // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-1, 8 << 20)   // M_TRIM_THRESHOLD
        _ = mallopt(-3, 8 << 20)   // M_MMAP_THRESHOLD (fixes it: no dynamic threshold)
    }

    /// The other side of keeping freed memory: after a spike (an attack, a burst of large
    /// answers) the process would stay at its peak, up to 64 MiB per arena and whatever is
    /// fragmented below the top of each heap. Every 2 s this reads the resident size
    /// (`/proc/self/statm`, one small read); while it is 32 MiB or more above the lowest seen
    /// (the idle level), `malloc_trim(0)` gives the free pages back. It walks the arenas: a
    /// few milliseconds at most once per 2 s, and only while memory is that far above idle.
    /// Issue 11: RSS returns near its idle level after an attack ends.
    static func releaseAfterSpikes() -> Task<Void, Never> {
        Task.detached(priority: .background) {
            typealias MallocTrim = @convention(c) (Int) -> Int32
            guard let symbol = dlsym(nil, "malloc_trim") else { return }
            let trim = unsafeBitCast(symbol, to: MallocTrim.self)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            var idle = residentBytes(page: page) ?? Int.max  // at start: the process is idle
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 2_000_000_000)
                guard let now = residentBytes(page: page) else { return }
                idle = min(idle, now)
                if now >= idle + (32 << 20) { _ = trim(0) }
            }
        }
    }

    /// The resident size: `/proc/self/statm`'s second number, in pages.
    private static func residentBytes(page: Int) -> Int? {
        guard let file = fopen("/proc/self/statm", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let fields = String(cString: line).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * page
    }
}
#else
enum MallocTuning {
    static func apply() {}
    static func releaseAfterSpikes() -> Task<Void, Never> { Task {} }
}
#endif
