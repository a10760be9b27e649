#if canImport(Glibc)
import Glibc

/// glibc malloc settings for a process that allocates and frees batch-sized buffers (tens to
/// hundreds of kB) thousands of times a second. By default glibc returns freed memory at the
/// top of a heap to the kernel (trim at 128 kB, madvise in thread arenas) and serves large
/// blocks with mmap (dynamic threshold from 128 kB), so the same pages were unmapped and
/// faulted back in for every batch: madvise and page faults took 5-7% of the CPU in a perf
/// profile of durable batched StartTask (RESULTS.md). Keeping up to 64 MiB of freed memory
/// in the process, and serving blocks below 8 MiB from the heap, removes that churn; a
/// quiet A/B run gave +8% throughput (durable-start-task.sh; the figure is in RESULTS.md).
/// `GLIBC_TUNABLES` set by an operator still wins, being read at startup before this runs.
enum MallocTuning {
    static func apply() {
        guard getenv("GLIBC_TUNABLES") == nil else { return }
        // mallopt is declared in <malloc.h>, which Swift's Glibc module does not import.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }  // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-1, 64 << 20)  // M_TRIM_THRESHOLD
        _ = mallopt(-3, 8 << 20)   // M_MMAP_THRESHOLD (fixes it: no dynamic threshold)
    }
}
#else
enum MallocTuning {
    static func apply() {}
}
#endif
