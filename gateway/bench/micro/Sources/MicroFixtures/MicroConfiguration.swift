import Benchmark

/// The configuration every micro-benchmark runs with.
public enum MicroConfiguration {
    /// Wall clock and throughput to read, malloc counts to check. Short runs: the machine is
    /// shared and has 2 cores, and allocation counts need few iterations to be exact.
    ///
    /// The regression check (`swift package benchmark thresholds check`, run by micro.sh)
    /// compares the p90 of each metric named in `Thresholds/<target>.<benchmark>.p90.json`
    /// with the tolerance given here. Those files name `mallocCountTotal` only: allocation
    /// counts are deterministic for a given toolchain, so any change is real and the tolerance
    /// is 0; times on a shared machine are not, so they are never gated on.
    public static var standard: Benchmark.Configuration {
        Benchmark.Configuration(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            timeUnits: .nanoseconds,
            warmupIterations: 20,
            scalingFactor: .one,
            maxDuration: .milliseconds(800),
            maxIterations: 5_000,
            thresholds: [.mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 0])]
        )
    }
}
