#!/usr/bin/env python3
"""Helpers of grpc-start-task.sh: a real gRPC client (grpcio) and an idle-connection opener.

  grpc_bench.py stubs OUTDIR                  generate the Python stubs of the repository's proto
  grpc_bench.py frame OUT                     write the StartTask request as one gRPC frame
                                              (5-byte prefix + protobuf), decode it back, print it
  grpc_bench.py start-service HOST:PORT       StartService; prints "service_id=N location=..."
  grpc_bench.py start-task HOST:PORT SID      StartTask;    prints "task_id=N location=..."
  grpc_bench.py idle HOST:PORT N PID [HOLD]   open N idle h2c connections (preface + SETTINGS,
                                              ACK of the server's SETTINGS), print PID's RSS
                                              before and after, hold them HOLD s, close them
  grpc_bench.py polite HOST:PORT SECONDS TIMEOUT
                                              a well-behaved client on a connection of its own:
                                              StartTask one at a time with a deadline for SECONDS;
                                              prints one JSON line (calls, ok, p50/p99/max ms)

Every gRPC call exits 1 unless grpc-status is OK. Set BENCH_STUBS to the stubs directory.
"""
import asyncio
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROTO_DIR = os.path.join(ROOT, "proto")
PROTO = "genesys/cs/v1/context_services.proto"

# The request of the benchmark: service 1, a task type by name, an interaction id: 40 bytes.
TASK_TYPE = "VoiceInbound"
INTERACTION_ID = "00AG6F0Q8S9AH5BQ1C"


def stubs(outdir):
    import grpc_tools
    from grpc_tools import protoc
    os.makedirs(outdir, exist_ok=True)
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={outdir}",
                      f"--grpc_python_out={outdir}", PROTO])
    if rc != 0:
        sys.exit(f"grpc_tools.protoc failed ({rc})")


def load():
    sys.path.insert(0, os.environ["BENCH_STUBS"])
    from genesys.cs.v1 import context_services_pb2 as pb
    from genesys.cs.v1 import context_services_pb2_grpc as pbg
    return pb, pbg


def start_task_request(pb, service_id=1):
    return pb.StartTaskRequest(service_id=service_id, task_type=pb.BusinessAttribute(name=TASK_TYPE),
                               event=pb.EventFields(interaction_id=INTERACTION_ID))


def frame(out):
    pb, _ = load()
    message = start_task_request(pb).SerializeToString()
    data = struct.pack(">BI", 0, len(message)) + message
    with open(out, "wb") as f:
        f.write(data)
    # Decode what was written, from the file, as a server would.
    with open(out, "rb") as f:
        raw = f.read()
    flag, length = struct.unpack(">BI", raw[:5])
    assert flag == 0 and length == len(raw) - 5, (flag, length, len(raw))
    back = pb.StartTaskRequest.FromString(raw[5:])
    assert back.service_id == 1 and back.task_type.name == TASK_TYPE and back.event.interaction_id == INTERACTION_ID, back
    print(f"frame {out}: {len(raw)} bytes = 5-byte prefix + {length}-byte StartTaskRequest "
          f"{{service_id: {back.service_id}, task_type.name: {back.task_type.name!r}, "
          f"event.interaction_id: {back.event.interaction_id!r}}}; hex {raw.hex()}")


def call(target, method, request):
    import grpc
    pb, pbg = load()
    with grpc.insecure_channel(target) as channel:
        stub = pbg.ContextServicesStub(channel)
        try:
            response, rpc = getattr(stub, method).with_call(request(pb), timeout=10)
        except grpc.RpcError as e:
            sys.exit(f"{method} on {target}: grpc-status {e.code().name}: {e.details()}")
        if rpc.code() != grpc.StatusCode.OK:
            sys.exit(f"{method} on {target}: grpc-status {rpc.code().name}")
        return response


def start_service(target):
    r = call(target, "StartService", lambda pb: pb.StartServiceRequest(
        service_type=pb.BusinessAttribute(name="CustomerCare"), customer_id="bench-customer-0001"))
    if r.service_id <= 0:
        sys.exit(f"StartService on {target}: OK but no service id: {r}")
    print(f"grpc-status=OK service_id={r.service_id} location={r.location}")


def start_task(target, sid):
    r = call(target, "StartTask", lambda pb: start_task_request(pb, sid))
    if r.task_id <= 0:
        sys.exit(f"StartTask on {target}: OK but no task id: {r}")
    print(f"grpc-status=OK task_id={r.task_id} location={r.location}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


async def open_idle(host, port):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(PREFACE + EMPTY_SETTINGS)
    await writer.drain()
    # Read frames until the server's SETTINGS (not an ACK) arrived; ACK it. Then idle.
    acked = False
    while not acked:
        head = await asyncio.wait_for(reader.readexactly(9), 10)
        length = int.from_bytes(head[:3], "big")
        kind, flags = head[3], head[4]
        if length:
            await reader.readexactly(length)
        if kind == 0x4 and not flags & 0x1:
            writer.write(SETTINGS_ACK)
            await writer.drain()
            acked = True
        if kind == 0x7:
            raise RuntimeError("GOAWAY from the server")
    return reader, writer


async def idle(target, count, pid, hold):
    host, port = target.rsplit(":", 1)
    port = int(port)
    # Warm up: a few connections opened and closed first, so lazily built state (buffers,
    # allocator arenas) is in the baseline rather than charged to the idle connections.
    warm = [await open_idle(host, port) for _ in range(20)]
    for _, w in warm:
        w.close()
    await asyncio.sleep(1)
    before = rss_kib(pid)
    conns = []
    for i in range(0, count, 100):
        conns += await asyncio.gather(*(open_idle(host, port) for _ in range(min(100, count - i))))
    await asyncio.sleep(2)  # let the server settle
    after = rss_kib(pid)
    # Every connection must still be open: nothing may have arrived but nothing may be EOF.
    await asyncio.sleep(hold)
    alive = sum(1 for r, _ in conns if not r.at_eof())
    after2 = rss_kib(pid)
    for _, w in conns:
        w.close()
    per = (after - before) / count
    print(f"idle connections={count} alive={alive} rss_before_kib={before} rss_after_kib={after} "
          f"rss_after_hold_kib={after2} per_connection_kib={per:.2f}")
    if alive != count:
        sys.exit(f"only {alive} of {count} connections stayed open")


def polite(target, seconds, timeout):
    """Sequential StartTask calls with a deadline, as an IVR would make them, while a load
    generator floods the gateway on other connections (overload.sh)."""
    import json
    import grpc
    pb, pbg = load()
    request = start_task_request(pb)
    times, ok, codes = [], 0, {}
    with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = pbg.ContextServicesStub(channel)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                stub.StartTask(request, timeout=timeout)
                ok += 1
            except grpc.RpcError as error:
                codes[error.code().name] = codes.get(error.code().name, 0) + 1
            times.append(time.monotonic() - began)
    times.sort()
    pick = lambda q: round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 1) if times else None
    print(json.dumps({"calls": len(times), "ok": ok, "failed": codes, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                      "max_ms": round(times[-1] * 1000, 1) if times else None}))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "stubs":
        stubs(args[0])
    elif cmd == "frame":
        frame(args[0])
    elif cmd == "start-service":
        start_service(args[0])
    elif cmd == "start-task":
        start_task(args[0], int(args[1]))
    elif cmd == "polite":
        polite(args[0], float(args[1]), float(args[2]))
    elif cmd == "idle":
        asyncio.run(idle(args[0], int(args[1]), int(args[2]), float(args[3]) if len(args) > 3 else 1.0))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
