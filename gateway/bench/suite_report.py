#!/usr/bin/env python3
"""The report of suite.sh: reads one run's raw folder, writes RESULTS.md and throughput-latency.png.

  suite_report.py OUT_DIR RESULTS_DIR

OUT_DIR holds what suite.sh left there: meta.env, runs.tsv (one row per load-tool run, with its
JSON report), the JSON results of the scripts it called: front.json (grpc-start-task.sh),
durable-r*.json (durable-start-task.sh), postgres-r*.json (postgres-start-task.sh), and
commands.txt, failures.txt. Their Markdown outputs (front.md, durable-r*.md, …) are for people:
this report reads none of them. Medians are over the runs not marked disturbed (over all of them
when every run was). Needs matplotlib (`gateway/scripts/setup.sh --bench` installs it into the
project's .venv).
"""
import json
import os
import re
import statistics
import sys

out, results = sys.argv[1], sys.argv[2]


def read_meta():
    meta = {}
    with open(os.path.join(out, "meta.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


meta = read_meta()
RUNS = int(meta.get("runs", "1"))


def load_json(name):
    """A script's JSON results in OUT_DIR, or None when it did not run (or wrote nothing)."""
    path = os.path.join(out, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cell(v, decimals=2):
    """A JSON number as the scripts print it in their tables (null: empty)."""
    if v is None:
        return ""
    return f"{v:.{decimals}f}" if isinstance(v, float) else str(v)


def num(text):
    m = re.search(r"-?[0-9][0-9,]*\.?[0-9]*", text or "")
    return float(m.group(0).replace(",", "")) if m else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median_low(values) if values else None


def fmt(v, decimals=0):
    if v is None:
        return "–"
    return f"{v:,.{decimals}f}"


def ratio(a, b, decimals=2):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.{decimals}f}×"


# --- load-tool runs ----------------------------------------------------------------------------------

runs = []
tsv = os.path.join(out, "runs.tsv")
if os.path.exists(tsv):
    with open(tsv) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            try:
                with open(os.path.join(out, row["file"])) as j:
                    row["report"] = json.load(j)
            except (OSError, ValueError):
                row["report"] = None
            runs.append(row)


def select(part, config, percent=""):
    """The runs of one configuration: the undisturbed ones, or all when every one was disturbed."""
    chosen = [r for r in runs if r["part"] == part and r["config"] == config and r["percent"] == percent and r["report"]]
    clean = [r for r in chosen if r["disturbed"] != "yes"]
    return clean or chosen


def all_runs(part, config, percent=""):
    return [r for r in runs if r["part"] == part and r["config"] == config and r["percent"] == percent]


def median_run(rs, key):
    """The run whose key is the (low) median: its other figures are shown with it."""
    if not rs:
        return None
    rs = sorted(rs, key=key)
    return rs[(len(rs) - 1) // 2]


def rate(r):
    return r["report"]["rate"]


def p99(r):
    return r["report"]["latency_us"]["p99"]


def journeys_per_s(r):
    rep = r["report"]
    return rep.get("journeys_completed", 0) / rep["duration_s"] if rep["duration_s"] else 0


def run_list(rs, value, decimals=0):
    return ", ".join(fmt(value(r), decimals) + ("\\*" if r["disturbed"] == "yes" else "") if r["report"] else "failed" for r in rs)


# --- the parts -----------------------------------------------------------------------------------------

front_doc = load_json("front.json")
front = {}  # server -> the cells of grpc-start-task.sh's table, keyed by its header
idle = {}  # server -> the cells of its idle-connections table
if front_doc:
    for r in front_doc.get("servers", []):
        front[r["server"]] = {
            "server": r["server"], "req/s": str(r["rps"]), "runs (req/s)": r["runs_text"],
            "p50 ms": cell(r["p50_ms"]), "p99 ms": cell(r["p99_ms"]), "p99.9 ms": cell(r["p999_ms"]),
            "mean ms": cell(r["mean_ms"]), "max ms": cell(r["max_ms"]),
            "× C++ peer": "–" if r.get("x_cpp_peer") is None else f"{r['x_cpp_peer']:.2f}",
            "server CPU": f"{r['server_cpu']}%", "other CPU": f"{r['other_cpu']}%", "notes": r.get("notes", ""),
        }
    for r in front_doc.get("idle", []):
        idle[r["server"]] = {
            "server": r["server"], "idle h2c connections": str(r["alive"]), "RSS before KiB": str(r["rss_before_kib"]),
            "RSS after KiB": str(r["rss_after_kib"]), "KiB per connection": f"{r['per_connection_kib']:.1f}",
        }


def front_text(doc):
    """grpc-start-task.sh's summary as it prints it: the run's line, its table, the note, the idle table."""
    paras = [
        f"Commit {doc['commit']}, {doc['date']} {doc['time']}Z, others used {doc['others_cpu_before']}% of a CPU just before "
        f"the runs, {doc['cpus']} CPUs ({doc['cpu_model']}); servers on CPU {doc['server_cpu']}, `h2load {doc['load']} "
        f"-D{doc['duration']}` on CPU {doc['client_cpu']}; median of {doc['runs']} run(s) by req/s (latencies of that run).",
    ]
    header = ["server", "req/s", "runs (req/s)", "p50 ms", "p99 ms", "p99.9 ms", "mean ms", "max ms", "× C++ peer",
              "server CPU", "other CPU", "notes"]
    table = ["| " + " | ".join(header) + " |", "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    table += ["| " + " | ".join(row[h] for h in header) + " |" for row in front.values()]
    paras.append("\n".join(table))
    paras.append(f"req/s marked * were disturbed (others used more than {doc['disturbed_limit']}% of a CPU) and left out "
                 "of the median. Latency, CPU columns: the median run.")
    if idle:
        header = ["server", "idle h2c connections", "RSS before KiB", "RSS after KiB", "KiB per connection"]
        table = ["| " + " | ".join(header) + " |", "|---|--:|--:|--:|--:|"]
        table += ["| " + " | ".join(row[h] for h in header) + " |" for row in idle.values()]
        paras.append("\n".join(table))
    return paras


durable = {}  # (path, config) -> list of rows over the runs, keyed as durable-start-task.sh's table
for n in range(1, RUNS + 1):
    doc = load_json(f"durable-r{n}.json")
    for r in (doc or {}).get("rows", []):
        durable.setdefault((r["path"], r["config"]), []).append({
            "path": r["path"], "config": r["config"], "load": r["load"],
            "requests/s": "" if r.get("rps") is None else str(r["rps"]), "answered": str(r.get("answered")),
            "stored": str(r.get("stored")),
        })


postgres = {}  # (store, cores, config) -> list of rows over the runs, keyed as postgres-start-task.sh's table
postgres_settings = ""
for n in range(1, RUNS + 1):
    doc = load_json(f"postgres-r{n}.json")
    if not doc:
        continue
    postgres_settings = doc.get("postgres", postgres_settings)
    for r in doc.get("rows", []):
        postgres.setdefault((r["store"], str(r["cores"]), r["config"]), []).append({
            "store": r["store"], "cores": str(r["cores"]), "config": r["config"],
            "requests/s": "" if r.get("rps") is None else str(r["rps"]),
            "CPU s: gateway / cores / PostgreSQL": r.get("cpu_text", ""),
        })


def durable_rps(path, config):
    rows = durable.get((path, config), [])
    return median([num(r["requests/s"]) for r in rows]), rows


closed = {c: select("closed", c) for c in ("batching", "no-batching")}
closed_rate = {c: (rate(median_run(rs, rate)) if rs else None) for c, rs in closed.items()}
sweep_points = {}  # config -> [(percent, run)]
for c in ("batching", "no-batching"):
    pcts = sorted({int(r["percent"]) for r in runs if r["part"] == "sweep" and r["config"] == c and r["percent"]})
    sweep_points[c] = [(p, median_run(select("sweep", c, str(p)), p99)) for p in pcts]
    sweep_points[c] = [(p, r) for p, r in sweep_points[c] if r]
half = {c: median([p99(r) for r in select("sweep", c, "50")]) for c in ("batching", "no-batching")}
journey = {c: select("journey", c) for c in ("grpc-gateway", "rest-gateway", "rest-core")}
journey_rate = {c: (journeys_per_s(median_run(rs, journeys_per_s)) if rs else None) for c, rs in journey.items()}

# --- the summary ---------------------------------------------------------------------------------------

summary = []


def row(number, what, measured, peer, x_peer, target, x_target, met):
    verdict = "–" if met is None else ("**met**" if met else "not met")
    summary.append(f"| {number} | {what} | {measured} | {peer} | {x_peer} | {target} | {x_target} | {verdict} |")


def req(server):
    return num(front[server]["req/s"]) if server in front else None


def star_front(server):
    """\\* when every run of grpc-start-task.sh for this server was disturbed (it marks them with *)."""
    runs_text = front.get(server, {}).get("runs (req/s)", "")
    return "\\*" if runs_text and all(x.strip().endswith("*") for x in runs_text.split(",")) else ""


def star(rs):
    """\\* when every run behind a figure was disturbed."""
    return "\\*" if rs and all(r["disturbed"] == "yes" for r in rs) else ""


stub, cpp, ngx = req("gateway-stub"), req("cpp-peer"), req("nghttpd")
if front:
    r1 = stub / cpp if stub and cpp else None
    row(1, "gRPC StartTask, front end alone (stub core), h2load -c8 -m32", f"{fmt(stub)}{star_front('gateway-stub')} req/s",
        f"C++ gRPC: {fmt(cpp)}{star_front('cpp-peer')} req/s",
        ratio(stub, cpp), "≥ 2× C++", ratio(r1, 2) if r1 else "–", None if r1 is None else r1 >= 2)
    r2 = stub / ngx if stub and ngx else None
    row(2, "the same vs nghttpd (static file)", f"{fmt(stub)}{star_front('gateway-stub')} req/s",
        f"nghttpd: {fmt(ngx)}{star_front('nghttpd')} req/s",
        ratio(stub, ngx), "≥ 0.5× nghttpd", ratio(r2, 0.5) if r2 else "–", None if r2 is None else r2 >= 0.5)
    vendor = req("gateway-stub-vendor")
    if vendor:
        rv = vendor / cpp if cpp else None
        row("1", "the same, stub without the batch endpoint (vendor mode: one HTTP/1.1 request upstream per call)",
            f"{fmt(vendor)}{star_front('gateway-stub-vendor')} req/s", f"C++ gRPC: {fmt(cpp)}{star_front('cpp-peer')} req/s",
            ratio(vendor, cpp), "≥ 2× C++", ratio(rv, 2) if rv else "–", None if rv is None else rv >= 2)

h2_on, _ = durable_rps("gRPC → gateway → core", "batching")
h2_off, _ = durable_rps("gRPC → gateway → core", "no-batching")
rest_core, _ = durable_rps("REST → core", "single calls")
if durable:
    row("3", "durable StartTask end to end, h2load -c8 -m32 (batching on)", f"{fmt(h2_on)} /s",
        f"REST → core (wrk -c64): {fmt(rest_core)} /s", ratio(h2_on, rest_core), "≥ 50,000 /s",
        ratio(h2_on, 50000), None if h2_on is None else h2_on >= 50000)
if closed_rate["batching"]:
    row("3", "the same, `gateway load` closed loop", f"{fmt(closed_rate['batching'])}{star(closed['batching'])} /s",
        f"REST → core (wrk -c64): {fmt(rest_core)} /s", ratio(closed_rate["batching"], rest_core), "≥ 50,000 /s",
        ratio(closed_rate["batching"], 50000), closed_rate["batching"] >= 50000)
if durable:
    r4 = h2_on / h2_off if h2_on and h2_off else None
    row("4", "batching on vs off, durable, h2load", f"{fmt(r4, 1)}× ({fmt(h2_on)} vs {fmt(h2_off)} /s)" if r4 else "–",
        f"batching off: {fmt(h2_off)} /s", ratio(h2_on, h2_off, 1), "≥ 10×", ratio(r4, 10) if r4 else "–",
        None if r4 is None else r4 >= 10)
if closed_rate["batching"] and closed_rate["no-batching"]:
    r4 = closed_rate["batching"] / closed_rate["no-batching"]
    row("4", "the same, `gateway load` closed loop",
        f"{r4:.1f}× ({fmt(closed_rate['batching'])}{star(closed['batching'])} vs {fmt(closed_rate['no-batching'])}{star(closed['no-batching'])} /s)",
        f"batching off: {fmt(closed_rate['no-batching'])}{star(closed['no-batching'])} /s", f"{r4:.1f}×", "≥ 10×", ratio(r4, 10), r4 >= 10)
def half_of(key):
    v = num(meta.get(key))
    return v / 2 if v else None


if half["batching"] is not None:
    ms = half["batching"] / 1000
    peer_ms = half["no-batching"] / 1000 if half["no-batching"] is not None else None
    row("5", "p99 at half of peak, durable StartTask, open loop (`gateway load --rate`), batching on",
        f"{ms:.2f} ms{star(select('sweep', 'batching', '50'))} at {fmt(half_of('peak_batching'))} /s",
        f"batching off, at its half peak ({fmt(half_of('peak_no-batching'))} /s): "
        f"{'–' if peer_ms is None else f'{peer_ms:.2f} ms'}{star(select('sweep', 'no-batching', '50'))}",
        ratio(ms, peer_ms), "≤ 2 ms", ratio(ms, 2), ms <= 2)
if idle:
    g = num(idle.get("gateway-memory", {}).get("KiB per connection"))
    c = num(idle.get("cpp-peer", {}).get("KiB per connection"))
    n = num(idle.get("nghttpd", {}).get("KiB per connection"))
    row("6", "memory per idle HTTP/2 connection (RSS, 1,000 h2c connections)", f"{fmt(g, 1)} KiB",
        f"C++ gRPC: {fmt(c, 1)} KiB; nghttpd: {fmt(n, 1)} KiB", ratio(g, c), "≤ 20 KiB", ratio(g, 20),
        None if g is None else g <= 20)
if journey_rate["grpc-gateway"] is not None:
    VENDOR = 1000 / 33  # ~1,000 REST requests/s on 16 cores, 33 calls per journey
    for c, label in (("grpc-gateway", "gRPC → gateway → core"), ("rest-gateway", "REST → gateway → core")):
        j = journey_rate[c]
        if j is None:
            continue
        calls = rate(median_run(journey[c], journeys_per_s))
        row("7", f"vendor sizing journey (33 calls), {label}, closed loop",
            f"{fmt(j, 1)}{star(journey[c])} journeys/s ({fmt(calls)} calls/s)",
            f"REST → core: {fmt(journey_rate['rest-core'], 1)}{star(journey['rest-core'])} journeys/s", ratio(j, journey_rate["rest-core"], 1),
            "vendor: ~30 journeys/s on 16 cores", ratio(j, VENDOR, 1), None)

# --- details ------------------------------------------------------------------------------------------

lines = []
w = lines.append
date, commit = meta.get("date", "?"), meta.get("commit", "?")
w("# Benchmarks: DESIGN §5, side by side")
w("")
w(f"Written by `gateway/bench/suite.sh` on **{date}** ({meta.get('mode')} mode: "
  f"{'medians of ' + str(RUNS) + ' runs' if RUNS > 1 else '1 run per row, no medians'}, "
  f"{meta.get('duration')} s per run), commit `{commit}`; each run of the script overwrites this file and "
  "[throughput-latency.png](throughput-latency.png). The machine is shared: compare the figures within "
  "one run, not across runs; `\\*` marks a run during which other processes used more than "
  f"{meta.get('disturbed')}% of a CPU (left out of the medians; run again unless in quick mode).")
w("")
w("## Machine")
w("")
w("| | |")
w("|---|---|")
w(f"| CPU | {meta.get('cpu')} × {meta.get('cpus')} (`/proc/cpuinfo`) |")
w(f"| kernel | {meta.get('kernel')} |")
w(f"| Swift | {meta.get('swift')} |")
w(f"| disk of the SQLite files | {meta.get('disk')} |")
w(f"| pinning | servers on CPU {meta.get('server_cpu')}, load generators on CPU {meta.get('client_cpu')} (taskset) |")
w(f"| binary | `swift build -c release --product gateway --scratch-path .build-bench` at {commit} |")
w("")
w("## DESIGN §5")
w("")
w("| # | row | measured | peer (same run) | × peer | target | × target | |")
w("|---|---|--:|---|--:|---|--:|---|")
lines.extend(summary)
w("")
w("× target is measured ÷ target: at least 1 meets a ≥ target, at most 1 meets a ≤ target. Row 7 has no "
  "DESIGN target: its column compares with the vendor's published sizing (about 1,000 REST requests/s on "
  "16 cores, i.e. ~30 journeys/s), measured here on one core for the server. `\\*`: every run behind that figure "
  "was disturbed by other processes; read it with care. `durable-start-task.sh` does not measure disturbance.")
w("")

w("## Front end alone vs its peers (`grpc-start-task.sh`)")
w("")
if front:
    # its summary line, its runs table, the idle table (from front.json)
    for para in front_text(front_doc):
        para = re.sub(r"/tmp/cs-suite\.[A-Za-z0-9]+", "$TMP", para)
        w(para)
        w("")
    w(f"`gateway-stub` is the front end with `stub-core.c` as its upstream (canned 201s, batches "
      "answered too, so calls go upstream batched as they do toward the project's core): DESIGN's "
      "\"upstream answered in-process\". `gateway-stub-vendor` starts the stub without the batch "
      "endpoint (a vendor core), so every call is its own HTTP/1.1 request upstream. The idle table "
      "measures `gateway serve --memory --threads 1`.")
else:
    w("(not run)")
w("")

w("## Durable StartTask end to end, h2load and wrk (`durable-start-task.sh`)")
w("")
if durable:
    w(f"The gateway with its embedded core (`serve --threads 1 --synchronous full`) on CPU {meta.get('server_cpu')}; "
      "median of the runs by requests/s.")
    w("")
    w("| path | config | load | requests/s (median) | runs | × batching off | × REST → core |")
    w("|---|---|---|--:|---|--:|--:|")
    for (path, config), rows in durable.items():
        med = median([num(r["requests/s"]) for r in rows])
        off = durable_rps(path, "no-batching")[0] if config == "batching" else None
        w(f"| {path} | {config} | {rows[0].get('load', '')} | {fmt(med)} | {', '.join(fmt(num(r['requests/s'])) for r in rows)} | "
          f"{ratio(med, off, 1) if off else ''} | {ratio(med, rest_core, 1)} |")
else:
    w("(not run)")
w("")

w("## Durable StartTask on PostgreSQL, one core and two (`postgres-start-task.sh`)")
w("")
if postgres:
    w(f"One gateway (`serve --threads 1`), its cores (`core --threads 1`) and PostgreSQL all on CPU "
      f"{meta.get('server_cpu')}, h2load -c8 -m32 on the other; median of the runs by requests/s. "
      f"PostgreSQL: {postgres_settings}. CPU seconds per process over the run (median run).")
    w("")
    w("| store | cores | config | requests/s (median) | runs | × batching off | × one core | CPU s: gateway / cores / PostgreSQL |")
    w("|---|--:|---|--:|---|--:|--:|---|")

    def pg_med(key):
        rows = postgres.get(key, [])
        return median([num(r["requests/s"]) for r in rows]) if rows else None

    for (store, cores, config), rows in postgres.items():
        med = median([num(r["requests/s"]) for r in rows])
        off = pg_med((store, cores, "no-batching")) if config == "batching" else None
        one = pg_med((store, "1", config)) if store == "pg" and cores == "2" else None
        mid = sorted(rows, key=lambda r: num(r["requests/s"]))[len(rows) // 2]
        w(f"| {store} | {cores} | {config} | {fmt(med)} | {', '.join(fmt(num(r['requests/s'])) for r in rows)} | "
          f"{ratio(med, off, 1) if off else ''} | {ratio(med, one, 2) if one else ''} | "
          f"{mid.get('CPU s: gateway / cores / PostgreSQL', '')} |")
    w("")
    for (store, cores, config) in postgres:
        if config == "batching" and (store, cores, "no-keys") in postgres:
            keyed, plain = pg_med((store, cores, "batching")), pg_med((store, cores, "no-keys"))
            w(f"- Idempotency keys, {store} × {cores}: {fmt(keyed)} /s with a key on every write against "
              f"{fmt(plain)} /s without ({ratio(keyed, plain)}; target ≥ 0.85).")
else:
    w("(not run)")
w("")

w("## Durable StartTask end to end, `gateway load` closed loop")
w("")
if any(closed.values()):
    w(f"`--connections {meta.get('connections')} --streams {meta.get('streams')} --threads 1 --warmup {meta.get('warmup')}`; "
      "after each run the core's listing of the service must hold every answered task (`stored`).")
    w("")
    w("| config | calls/s (median) | runs | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU | load tool CPU | others' CPU | stored ≥ answered |")
    w("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for c, rs in closed.items():
        m = median_run(rs, rate)
        if not m:
            continue
        lat = m["report"]["latency_us"]
        w(f"| {c} | {fmt(rate(m))} | {run_list(all_runs('closed', c), rate)} | {lat['p50'] / 1000:.2f} | {lat['p90'] / 1000:.2f} | "
          f"{lat['p99'] / 1000:.2f} | {lat['p99_9'] / 1000:.2f} | {lat['max'] / 1000:.2f} | {m['server_cpu']}% | {m.get('client_cpu', '?')}% | {m['other_cpu']}% | "
          f"{'yes' if all(r['check'] == 'ok' for r in all_runs('closed', c)) else 'NO'} ({m['stored']} stored, {m['report']['ok']} answered) |")
else:
    w("(not run)")
w("")

w("## Throughput vs latency, open loop (`gateway load --rate`)")
w("")
if any(sweep_points.values()):
    w("![p50 and p99 latency against achieved requests/s](throughput-latency.png)")
    w("")
    w(f"Rates are % of the closed-loop median above (batching on: {fmt(num(meta.get('peak_batching')))} /s, "
      f"off: {fmt(num(meta.get('peak_no-batching')))} /s); `{meta.get('sweep_duration')}` s per point after "
      f"a {meta.get('warmup')} warm-up, the same connections and streams. Latency counts from each call's intended "
      f"send time (no coordinated omission). At 50 %, {RUNS} run(s): the median p99 is row 5.")
    w("")
    w("| config | % of peak | intended /s | achieved /s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p99 of the runs (ms) | failed |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|")
    for c, pts in sweep_points.items():
        for p, r in pts:
            lat = r["report"]["latency_us"]
            w(f"| {c} | {p} | {fmt(r['report'].get('intended_rate'))} | {fmt(rate(r))} | {lat['p50'] / 1000:.2f} | "
              f"{lat['p90'] / 1000:.2f} | {lat['p99'] / 1000:.2f} | {lat['p99_9'] / 1000:.2f} | {lat['max'] / 1000:.2f} | "
              f"{run_list(all_runs('sweep', c, str(p)), lambda x: p99(x) / 1000, 2)} | {r['report']['failed']} |")
else:
    w("(not run)")
w("")

w("## The vendor's sizing journey (`gateway load --scenario journey`)")
w("")
if any(journey.values()):
    w("33 calls per journey (StartService; 5 × (StartState, 2 StartTask, 2 CompleteTask, CompleteState); one "
      "QueryService; CompleteService), one call in flight per journey, "
      f"{int(meta.get('connections', 0)) * int(meta.get('streams', 0))} journeys at a time "
      f"(`--connections {meta.get('connections')} --streams {meta.get('streams')}`), closed loop, durable "
      "(`--synchronous full`). The vendor publishes about 1,000 REST requests/s on 16 cores (~30 journeys/s).")
    w("")
    w("| path | journeys/s (median) | runs | calls/s | call p50 ms | call p99 ms | journey p50 ms | journey p99 ms | server CPU | × REST → core | × vendor (16 cores) |")
    w("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    labels = {"grpc-gateway": "gRPC → gateway → core", "rest-gateway": "REST → gateway → core", "rest-core": "REST → core (`gateway core`)"}
    for c, rs in journey.items():
        m = median_run(rs, journeys_per_s)
        if not m:
            continue
        lat, jl = m["report"]["latency_us"], m["report"].get("journey_latency_us", {})
        w(f"| {labels[c]} | {journeys_per_s(m):,.1f} | {run_list(all_runs('journey', c), journeys_per_s, 1)} | {fmt(rate(m))} | "
          f"{lat['p50'] / 1000:.2f} | {lat['p99'] / 1000:.2f} | {jl.get('p50', 0) / 1000:.0f} | {jl.get('p99', 0) / 1000:.0f} | "
          f"{m['server_cpu']}% | {ratio(journeys_per_s(m), journey_rate['rest-core'], 1)} | {ratio(journeys_per_s(m), 1000 / 33, 1)} |")
else:
    w("(not run)")
w("")

w("## Commands")
w("")
w(f"`$TMP` is the run's temporary folder (the binary copied there, so that a rebuild cannot swap it during the "
  "run; a fresh SQLite file per server), `PORT` the port the server chose. In order, each once:")
w("")
w("```")
seen = set()
cmd_path = os.path.join(out, "commands.txt")
if os.path.exists(cmd_path):
    with open(cmd_path) as f:
        for line in f:
            line = re.sub(r"data-[a-z0-9-]+/", "data-RUN/", line.rstrip("\n"))
            line = re.sub(r"--rate [0-9.]+", "--rate R", line)
            if line not in seen:
                seen.add(line)
                w(line)
w("```")
w("")
w("`gateway load --rate R`: R at each % of the closed-loop median of the same configuration.")
w("")

w("## Checks")
w("")
fails_path = os.path.join(out, "failures.txt")
if os.path.exists(fails_path) and os.path.getsize(fails_path):
    w("Failed:")
    w("")
    with open(fails_path) as f:
        for line in f:
            w(f"- {line.strip()}")
else:
    w("All passed: every load-tool call answered OK (no failed call or journey, no lost connection), every "
      "closed-loop run's tasks listed by the core, and `grpc-start-task.sh` and `durable-start-task.sh` "
      "exited 0 without reporting lost writes or non-201 answers.")
w("")
times = [(k[5:], v) for k, v in meta.items() if k.startswith("time_")]
w("Wall time: " + ", ".join(f"{k} {int(v) // 60} min {int(v) % 60} s" for k, v in times)
  + f"; total {int(meta.get('total_s', 0)) // 60} min {int(meta.get('total_s', 0)) % 60} s"
  + f" (of which building {meta.get('build_s')} s).")
w("")

os.makedirs(results, exist_ok=True)
with open(os.path.join(results, "RESULTS.md"), "w") as f:
    f.write("\n".join(lines))

# --- the plot ---------------------------------------------------------------------------------------------

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

configs = [c for c in ("batching", "no-batching") if sweep_points.get(c)]
disturbed_any = False
fig, axes = plt.subplots(1, max(len(configs), 1), figsize=(13, 5.5), sharey=True, squeeze=False)
axes = axes[0]
for ax, c in zip(axes, configs):
    pts = sweep_points[c]
    xs = [rate(r) for _, r in pts]
    ax.plot(xs, [r["report"]["latency_us"]["p50"] / 1000 for _, r in pts], "o-", color="tab:blue", label="p50")
    ax.plot(xs, [r["report"]["latency_us"]["p99"] / 1000 for _, r in pts], "s-", color="tab:red", label="p99")
    for (p, r), x in zip(pts, xs):
        if r["disturbed"] == "yes":
            for k, m, col in (("p50", "o", "tab:blue"), ("p99", "s", "tab:red")):
                ax.plot([x], [r["report"]["latency_us"][k] / 1000], m, color=col, mfc="white", mew=1.5)
            disturbed_any = True
        y = r["report"]["latency_us"]["p99"] / 1000
        ax.annotate(f"{p}%" + (f"\n{y:.2f} ms" if p == 50 else ""), (x, y), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8, color="tab:red")
    ax.axhline(2, color="gray", linestyle="--", linewidth=1, label="target: p99 ≤ 2 ms at half of peak")
    peak = num(meta.get(f"peak_{c}"))
    if peak:
        ax.axvline(peak / 2, color="gray", linestyle=":", linewidth=1, label="half of the closed-loop peak")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(0, max([peak or 0] + xs) * 1.05)
    ax.set_xlabel("achieved StartTask calls/s")
    ax.set_title(f"batching {'on' if c == 'batching' else 'off'}: closed-loop peak {fmt(peak)}/s, half {fmt(peak / 2 if peak else None)}/s",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))

ys = [r["report"]["latency_us"][k] / 1000 for c in configs for _, r in sweep_points[c] for k in ("p50", "p99")]
if ys:
    axes[0].set_ylim(min(min(ys), 2) / 1.6, max(max(ys), 2) * 2.5)  # room for the labels; the 2-ms line always in view
handles, labels = axes[0].get_legend_handles_labels()
if disturbed_any:
    handles.append(axes[0].plot([], [], "o", color="gray", mfc="white")[0])
    labels.append(f"hollow: disturbed run (others used > {meta.get('disturbed')}% of a CPU)")
if handles:
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
axes[0].set_ylabel("latency, ms (log scale; from intended send time)")
if not configs:
    axes[0].text(0.5, 0.5, "no open-loop runs", ha="center", va="center", transform=axes[0].transAxes)
fig.suptitle(f"Durable StartTask through the gateway (gRPC → gateway → core → SQLite, synchronous=full): latency vs throughput, "
             f"open loop (gateway load --rate)\n{date} · commit {meta.get('commit_short', commit)} · {meta.get('cpu')} × "
             f"{meta.get('cpus')}, gateway on CPU {meta.get('server_cpu')}, load on CPU {meta.get('client_cpu')} · "
             f"{meta.get('mode')} mode, {meta.get('sweep_duration')} s per point", fontsize=10)
fig.tight_layout(rect=(0, 0.05, 1, 1))
fig.savefig(os.path.join(results, "throughput-latency.png"), dpi=110)
print(f"suite_report: {os.path.join(results, 'RESULTS.md')}, {os.path.join(results, 'throughput-latency.png')}")
