#!/usr/bin/env python3
"""Writes the committed seed corpus, gateway/fuzz/corpus/<target>/ (README: "The corpus").

Valid examples from the tests, in each target's input format: JSON bodies from the model's
and the core's tests, batch requests and answers, REST targets, protobuf requests from the
golden vectors (Tests/GatewayTests/GoldenVectors.swift), gRPC-Web bodies, and HTTP/2 client
conversations (frames and HPACK written here by hand, RFC 9113 / RFC 7541). Small files, a
few dozen per target: the fuzzer's own working corpus stays out of git.

    python3 gateway/fuzz/make_seeds.py      # rewrites corpus/ (deterministic)
"""
import base64, hashlib, os, re, shutil, struct

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
corpus = os.path.join(here, "corpus")
MAX = 4096


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < MAX, (target, name, len(data))
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60]
    with open(os.path.join(d, safe), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


# --- strict-json: bodies the tests send -------------------------------------------------
def json_seeds():
    found = set()
    for path in ["Tests/ContextModelTests/EventTests.swift", "Tests/ContextModelTests/StrictJSONTests.swift",
                 "Tests/ContextModelTests/CanonicalJSONTests.swift", "Tests/TaskCoreTests/CoreHTTPTests.swift"]:
        for m in re.finditer(r'#"(\{[^#\n]*\})"#', read(path)):
            found.add(m.group(1))
    bodies = sorted(found, key=lambda s: (len(s), s))
    # Spread over sizes, at most 40.
    pick = bodies[:: max(1, len(bodies) // 36)][:36]
    extra = [
        '{"task_type":"customer info","question3":"will be better with cable tv"}',
        '{"a":{"b":[1,2,{"c":null}]},"e":"\\ud83d\\ude00\\u00e9\\n","n":-0.5e-3,"t":true,"f":false}',
        '{"timestamp":"2017-04-27T12:18:00.5+02:00","session_id":"s","media_type":5,"est_duration":0}',
        '  {"x":[[[[[[[[[[[]]]]]]]]]]]}  ',
    ]
    for i, b in enumerate(pick + extra):
        write("strict-json", f"{i:02d}-" + hashlib.sha1(b.encode()).hexdigest()[:8], b)


# --- batch-codec -------------------------------------------------------------------------
def batch_request(items):
    """Version 3: each item is an operation number, its ids and parameters, then headers,
    flags and body (BatchCodec.swift)."""
    out = b"CSB3" + struct.pack(">I", len(items))
    for op, sid, cid, params, tenant, auth, key, flags, body in items:
        out += struct.pack(">BQIH", op, sid, cid, len(params)) + params
        for t in (tenant, auth, key):
            t = t.encode()
            out += struct.pack(">H", len(t)) + t
        out += bytes([flags]) + struct.pack(">I", len(body)) + body
    return out


def batch_response(results):
    out = b"CSR3" + struct.pack(">I", len(results))
    for status, location, retry, flags, body in results:
        location = location.encode()
        out += struct.pack(">HH", status, len(location)) + location + struct.pack(">HBI", retry, flags, len(body)) + body
    return out


def batch_seeds():
    start = b'{"task_type":"customer info","question3":"will be better with cable tv"}'
    types = b"".join(struct.pack(">H", len(t)) + t for t in ["café".encode(), b"a,b"])
    write("batch-codec", "one-start-task", batch_request([(8, 7, 0, b"", "", "", "", 0, start)]))
    write("batch-codec", "three-operations", batch_request([
        (3, 7, 0, b"\x04", "cc-1", "Bearer t", "", 0, b""),
        (9, 7, 3, b"", "cc-1", "", "", 0, b'{"disposition":3}'),
        (4, 7, 0, b"", "", "Bearer t", "", 0, b"")]))
    write("batch-codec", "query-tasks", batch_request([(11, 1, 0, b"\x01" + struct.pack(">I", 2) + types, "\u00e9", "", "", 0, b"")]))
    write("batch-codec", "empty-count", b"CSB3\0\0\0\0")
    write("batch-codec", "truncated", batch_request([(1, 0, 0, b"", "", "", "", 0, b"{}")])[:-1])
    write("batch-codec", "bad-operation", batch_request([(99, 1, 0, b"", "", "", "", 0, b""), (10, 0, 0, b"", "", "", "", 0, b"")]))
    write("batch-codec", "keyed", batch_request([
        (8, 7, 0, b"", "cc-1", "", "ivr-7-call-42", 0, start),
        (8, 7, 0, b"", "", "", "gw-0123456789abcdef-0-1", 3, b"{}"),
        (3, 7, 0, b"\x00", "", "", "", 0, b"")]))
    write("batch-codec", "response", batch_response([(201, "/genesys/1/cs/service/7/tasks/1", 0, 1, b'{"task_id":1}'),
                                                     (429, "", 1, 0, b'{"message":"busy","exception":"OverloadedException"}')]))
    write("batch-codec", "response-one", batch_response([(204, "", 0, 0, b"")]))


# --- rest-route: [method index, base index] + target ------------------------------------
METHODS = ["GET", "POST", "DELETE", "PUT", "HEAD", "get"]


def route_seeds():
    targets = set()
    for path in ["Tests/ContextModelTests/RESTRouteTests.swift", "Tests/ContextModelTests/RESTRouteTargetTests.swift",
                 "Tests/TaskCoreTests/CoreHTTPTests.swift"]:
        for m in re.finditer(r'"(/genesys/1/cs[^"\\{}]*)"', read(path)):
            targets.add(m.group(1))
    targets |= {
        "/genesys/1/cs/services/start", "/genesys/1/cs/services/1/end", "/genesys/1/cs/services/1/states/start",
        "/genesys/1/cs/services/1/states/2/end", "/genesys/1/cs/services/1/states/2?active_tasks=true&completed_tasks=false",
        "/genesys/1/cs/services/1/tasks/2/end", "/genesys/1/cs/services/1/tasks/active?state_id=2&task_types=a,b%2Cc",
        "/genesys/1/cs/service/9223372036854775807/tasks/2147483647", "/genesys/1/cs/services/1/tasks/completed?task_types=%E2%82%AC+x",
    }
    def method_for(t):
        p = t.split("?")[0]
        if p.endswith("/start") or p.endswith("/end"):
            return 1
        return 0
    for i, t in enumerate(sorted(targets)):
        write("rest-route", f"{i:02d}", bytes([method_for(t), 0]) + t.encode())
    write("rest-route", "delete", bytes([2, 0]) + b"/genesys/1/cs/services/12")
    write("rest-route", "root-base", bytes([0, 1]) + b"/services/3?completed_states=true")


# --- proto-request: [RPCMethod index, depth index] + message ------------------------------
RPC = ["startService", "completeService", "queryService", "deleteService", "startState", "completeState", "queryState",
       "startTask", "completeTask", "queryTask", "queryTasks", "healthCheck", "healthWatch"]


def golden():
    text = read("Tests/GatewayTests/GoldenVectors.swift")
    for m in re.finditer(r'name: #"(.*?)"#, method: \.(\w+),\s*protobuf: #"([0-9a-f]*)"#', text):
        yield m.group(1), m.group(2), bytes.fromhex(m.group(3))


def proto_seeds():
    for i, (name, method, message) in enumerate(golden()):
        write("proto-request", f"{i:02d}-{name}", bytes([RPC.index(method), 0]) + message)
    write("proto-request", "health-check", bytes([RPC.index("healthCheck"), 0]) + b"\x0a\x04test")


# --- grpc-web: selector + body -------------------------------------------------------------
def framed(message, flag=0):
    return bytes([flag]) + struct.pack(">I", len(message)) + message


def grpcweb_seeds():
    messages = [m for _, _, m in golden()][:8]
    for i, m in enumerate(messages):
        write("grpc-web", f"binary-{i}", bytes([0]) + framed(m))
        write("grpc-web", f"text-{i}", bytes([1]) + base64.b64encode(framed(m)))
    write("grpc-web", "text-chunks", bytes([1]) + base64.b64encode(framed(b"ab")[:4]) + base64.b64encode(framed(b"ab")[4:]))
    write("grpc-web", "two-messages", bytes([0]) + framed(b"a") + framed(b"b"))
    write("grpc-web", "compressed", bytes([0]) + framed(b"abc", flag=1))
    write("grpc-web", "too-large-small-limit", bytes([2]) + framed(b"x" * 40))
    write("grpc-web", "fail-path", bytes([0x80]) + framed(b"\x08\x01"))


# --- http2-server: selector + client frames (after the preface and an empty SETTINGS) -----
def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value, indexed=False):
    # RFC 7541 §6.2.1 (incremental indexing, new name) or §6.2.2 (without indexing, new name).
    name, value = name.encode(), value.encode()
    return (b"\x40" if indexed else b"\x00") + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def headers(path, content_type="application/grpc", method="POST", extra=(), indexed=False):
    block = b""
    for n, v in [(":method", method), (":scheme", "http"), (":path", path), (":authority", "test")]:
        block += literal(n, v, indexed)
    if content_type:
        block += literal("content-type", content_type, indexed)
    block += literal("te", "trailers")
    for n, v in extra:
        block += literal(n, v, indexed)
    return block


END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def h2_seeds():
    call = frame(1, END_HEADERS, 1, headers("/test.Echo/Call")) + frame(0, END_STREAM, 1, framed(b"hello"))
    write("http2-server", "unary", b"\x00" + call)
    write("http2-server", "unary-held", b"\x04" + call)
    write("http2-server", "unary-byte-by-byte", b"\x01" + call)
    write("http2-server", "unary-drain", b"\x10" + call)
    write("http2-server", "headers-end-stream", b"\x00" + frame(1, END_HEADERS | END_STREAM, 1, headers("/test.Echo/Call")))
    write("http2-server", "deadline-metadata", b"\x04" + frame(1, END_HEADERS, 1, headers(
        "/test.Echo/Call", extra=[("grpc-timeout", "5S"), ("contactcenterid", "t-1"), ("authorization", "Bearer x")]))
        + frame(0, END_STREAM, 1, framed(b"x")))
    write("http2-server", "bad-timeout", b"\x00" + frame(1, END_HEADERS, 1, headers("/test.Echo/Call", extra=[("grpc-timeout", "99999999999H")])) + frame(0, END_STREAM, 1, framed(b"")))
    write("http2-server", "unknown-method", b"\x00" + frame(1, END_HEADERS, 1, headers("/x.Y/Z")) + frame(0, END_STREAM, 1, framed(b"1")))
    write("http2-server", "fail", b"\x00" + frame(1, END_HEADERS, 1, headers("/test.Echo/Fail")) + frame(0, END_STREAM, 1, framed(b"1")))
    write("http2-server", "compressed", b"\x00" + frame(1, END_HEADERS, 1, headers("/test.Echo/Call", extra=[("grpc-encoding", "gzip")])) + frame(0, END_STREAM, 1, framed(b"1", 1)))
    write("http2-server", "too-large", b"\x00" + frame(1, END_HEADERS, 1, headers("/test.Echo/Call")) + frame(0, END_STREAM, 1, framed(b"z" * 1100)))
    write("http2-server", "split-message", b"\x00" + frame(1, END_HEADERS, 1, headers("/test.Echo/Call"))
          + frame(0, 0, 1, framed(b"abcdef")[:3]) + frame(0, 0, 1, framed(b"abcdef")[3:]) + frame(0, END_STREAM, 1, b""))
    write("http2-server", "two-messages", b"\x00" + frame(1, END_HEADERS, 1, headers("/test.Echo/Call")) + frame(0, END_STREAM, 1, framed(b"a") + framed(b"b")))
    write("http2-server", "get-405", b"\x00" + frame(1, END_HEADERS | END_STREAM, 1, headers("/test.Echo/Call", method="GET")))
    write("http2-server", "no-content-type", b"\x00" + frame(1, END_HEADERS | END_STREAM, 1, headers("/test.Echo/Call", content_type=None)))
    many = b"".join(frame(1, END_HEADERS, s, headers("/test.Echo/Call", indexed=(s > 1))) + frame(0, END_STREAM, s, framed(bytes([s])))
                    for s in range(1, 12, 2))
    write("http2-server", "six-streams-indexed", b"\x04" + many)
    write("http2-server", "rst-after-call", b"\x04" + call + frame(3, 0, 1, struct.pack(">I", 8)))
    write("http2-server", "ping-settings-window", b"\x00" + frame(6, 0, 0, b"12345678") + frame(4, 0, 0, struct.pack(">HI", 4, 65535))
          + frame(4, ACK, 0) + frame(8, 0, 0, struct.pack(">I", 1000)) + call)
    write("http2-server", "continuation", b"\x00" + frame(1, 0, 1, headers("/test.Echo/Call")[:20])
          + frame(9, END_HEADERS, 1, headers("/test.Echo/Call")[20:]) + frame(0, END_STREAM, 1, framed(b"c")))
    write("http2-server", "priority-goaway", b"\x00" + frame(2, 0, 3, struct.pack(">IB", 1, 16)) + call + frame(7, 0, 0, struct.pack(">II", 1, 0)))
    rest_body = b'{"task_type":"x"}'
    rest = frame(1, END_HEADERS, 1, headers("/genesys/1/cs/services/1/tasks/start", content_type="application/json",
                                                extra=[("contactcenterid", "t"), ("x-custom", "v")])) + frame(0, END_STREAM, 1, rest_body)
    write("http2-server", "rest", b"\x08" + rest)
    write("http2-server", "rest-get", b"\x08" + frame(1, END_HEADERS | END_STREAM, 1, headers("/healthz", content_type=None, method="GET")))
    write("http2-server", "rest-too-large", b"\x08" + frame(1, END_HEADERS, 1, headers("/x", content_type="application/json")) + frame(0, END_STREAM, 1, b"y" * 300))
    write("http2-server", "grpc-web", b"\x08" + frame(1, END_HEADERS, 1, headers("/test.Echo/Call", content_type="application/grpc-web-text+proto"))
          + frame(0, END_STREAM, 1, base64.b64encode(framed(b"hi"))))
    write("http2-server", "rest-and-grpc-held-drain", b"\x1c" + rest + frame(1, END_HEADERS, 3, headers("/test.Echo/Call")) + frame(0, END_STREAM, 3, framed(b"q")))


if __name__ == "__main__":
    shutil.rmtree(corpus, ignore_errors=True)
    json_seeds()
    batch_seeds()
    route_seeds()
    proto_seeds()
    grpcweb_seeds()
    h2_seeds()
    for t in sorted(os.listdir(corpus)):
        print(t, len(os.listdir(os.path.join(corpus, t))))
