#!/usr/bin/env python3
"""The RPC table of proto/: one descriptor per RPC, generated (gen-proto.sh runs this).

    gen-rpc-table.py PROTO_ROOT C_OUT_DIR SWIFT_OUT_FILE

Reads every .proto under PROTO_ROOT (a small parser for the subset proto/ uses: messages,
nested enums, `oneof`, proto3 `optional`, `repeated`, services, `stream`) and writes:

  C_OUT_DIR/rpc_table.c, C_OUT_DIR/include/cs_rpc_table.h
      per RPC (in table order) the protobuf-c descriptors of its request and response
      messages and its method path. Swift must never take a descriptor's address itself
      (STACK-NOTES.md: a stack copy in release builds): it asks these functions.
  SWIFT_OUT_FILE (Sources/Gateway/Codec/RPCDescriptors+Generated.swift)
      `enum RPCMethod` (one case per RPC of the services the gateway answers), the table
      `RPCMethod.table` (path, names, request and response field maps) and the field maps
      of every message (`ProtoSchema`), the service prefixes of every service of proto/
      (RPC-path detection), and the enums' value names.

Which services are served (and so get an `RPCMethod` case): SERVED below. Case names are
the method's name in lowerCamelCase, prefixed by the service's name for every service but
the first (healthCheck). Deterministic: same input, same bytes.
"""
import os
import re
import sys

# The services whose RPCs the gateway answers through `RPCMethod` (reflection has its own
# streaming handler, Sources/Gateway/Reflection, and only needs its path prefix).
SERVED = ["genesys.cs.v1.ContextServices", "grpc.health.v1.Health"]

SCALARS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool", "string", "bytes",
           "double", "float", "fixed32", "fixed64", "sfixed32", "sfixed64"}


def tokens(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.findall(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_.]*|-?\d+|[{}()\[\];=<>,]', text)


class Parser:
    def __init__(self, path, text):
        self.path = path
        self.t = tokens(text)
        self.i = 0
        self.package = ""
        self.messages = []  # (full name, [field dicts])
        self.enums = []     # (full name, [(name, number)])
        self.services = []  # (full name, [(method, request, response, client stream, server stream)])

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected=None):
        tok = self.t[self.i]
        if expected is not None and tok != expected:
            raise SystemExit(f"gen-rpc-table: {self.path}: expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def skip_statement(self):
        depth = 0
        while True:
            tok = self.take()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return
            elif tok == ";" and depth == 0:
                return

    def skip_options(self):
        if self.peek() == "[":
            while self.take() != "]":
                pass

    def parse(self):
        while self.peek() is not None:
            tok = self.peek()
            if tok == "package":
                self.take()
                self.package = self.take()
                self.take(";")
            elif tok == "message":
                self.message(self.package)
            elif tok == "enum":
                self.enum(self.package)
            elif tok == "service":
                self.service()
            else:
                self.skip_statement()
        return self

    def enum(self, scope):
        self.take("enum")
        name = f"{scope}.{self.take()}"
        self.take("{")
        values = []
        while self.peek() != "}":
            if self.peek() in ("option", "reserved"):
                self.skip_statement()
                continue
            value = self.take()
            self.take("=")
            number = int(self.take())
            self.skip_options()
            self.take(";")
            values.append((value, number))
        self.take("}")
        self.enums.append((name, values))

    def message(self, scope):
        self.take("message")
        name = f"{scope}.{self.take()}"
        self.take("{")
        fields = []
        while self.peek() != "}":
            tok = self.peek()
            if tok == "message":
                self.message(name)
            elif tok == "enum":
                self.enum(name)
            elif tok in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif tok == "oneof":
                self.take()
                oneof = self.take()
                self.take("{")
                while self.peek() != "}":
                    if self.peek() == "option":
                        self.skip_statement()
                        continue
                    fields.append(self.field(name, "oneof", oneof))
                self.take("}")
            else:
                label = "implicit"
                if tok in ("optional", "repeated"):
                    label = "explicit" if tok == "optional" else "repeated"
                    self.take()
                fields.append(self.field(name, label, None))
        self.take("}")
        self.messages.append((name, fields))

    def field(self, scope, label, oneof):
        type_ = self.take()
        if type_ == "map":
            raise SystemExit(f"gen-rpc-table: {self.path}: map fields are not supported")
        name = self.take()
        self.take("=")
        number = int(self.take())
        self.skip_options()
        self.take(";")
        return {"name": name, "number": number, "type": type_, "label": label, "oneof": oneof, "scope": scope}

    def service(self):
        self.take("service")
        name = f"{self.package}.{self.take()}"
        self.take("{")
        methods = []
        while self.peek() != "}":
            if self.peek() != "rpc":
                self.skip_statement()
                continue
            self.take("rpc")
            method = self.take()
            self.take("(")
            client_stream = self.peek() == "stream"
            if client_stream:
                self.take()
            request = self.take()
            self.take(")")
            self.take("returns")
            self.take("(")
            server_stream = self.peek() == "stream"
            if server_stream:
                self.take()
            response = self.take()
            self.take(")")
            if self.peek() == "{":
                self.skip_statement()
            else:
                self.take(";")
            methods.append((method, request, response, client_stream, server_stream))
        self.take("}")
        self.services.append((name, methods))


def resolve(type_name, scope, known):
    """protoc's scoping: innermost scope first, then outwards; a leading '.' is absolute."""
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:]
    parts = scope.split(".")
    while parts:
        candidate = ".".join(parts + [type_name])
        if candidate in known:
            return candidate
        parts.pop()
    if type_name in known:
        return type_name
    raise SystemExit(f"gen-rpc-table: unknown type {type_name} in {scope}")


def lower_camel(name):
    return name[:1].lower() + name[1:]


def c_name(full):
    """genesys.cs.v1.StartTaskRequest -> genesys__cs__v1__start_task_request (protoc-c's spelling)."""
    package, _, short = full.rpartition(".")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", short).lower()
    return "__".join(package.split(".") + [snake])


def swift_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    root, c_out, swift_out = sys.argv[1:]
    parsed = []
    files = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith(".proto"):
                files.append(os.path.relpath(os.path.join(dirpath, n), root))
    files.sort()
    for f in files:
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            parsed.append((f, Parser(f, fh.read()).parse()))
    # The well-known types proto/ imports: only their names matter (message fields pointing at
    # them); google.protobuf.Struct is what `extensions` is.
    wkt = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}

    messages = {}
    enums = {}
    services = []
    for f, p in parsed:
        for name, fields in p.messages:
            messages[name] = (f, fields)
        for name, values in p.enums:
            enums[name] = (f, values)
        for name, methods in p.services:
            services.append((f, name, p.package, methods))
    known = set(messages) | set(enums) | wkt

    served_files = sorted({f for f, name, _, _ in services if name in SERVED})
    for s in SERVED:
        if s not in {name for _, name, _, _ in services}:
            raise SystemExit(f"gen-rpc-table: service {s} not found under {root}")

    rpcs = []
    for s in SERVED:
        f, name, package, methods = next(x for x in services if x[1] == s)
        short = name.rpartition(".")[2]
        for method, request, response, client_stream, server_stream in methods:
            case = lower_camel(method) if s == SERVED[0] else lower_camel(short) + method
            rpcs.append({
                "case": case, "service": name, "method": method, "path": f"/{name}/{method}",
                "request": resolve(request, package, known), "response": resolve(response, package, known),
                "client_stream": client_stream, "server_stream": server_stream,
            })

    # Only the messages of the served files (and their well-known imports) get field maps.
    described = [m for m in sorted(messages) if messages[m][0] in served_files]

    def field_map(full, indent):
        _, fields = messages[full]
        ordered = sorted(fields, key=lambda x: x["number"])  # protoc-c's order: by number
        lines = []
        for index, fd in enumerate(ordered):
            type_ = resolve(fd["type"], fd["scope"], known)
            if type_ in SCALARS:
                kind = "." + type_
                type_name = "nil"
            elif type_ in enums:
                kind = ".enumeration"
                type_name = swift_string(type_)
            else:
                kind = ".message"
                type_name = swift_string(type_)
            if fd["label"] == "oneof":
                presence = f".oneof({swift_string(fd['oneof'])})"
            elif fd["label"] == "repeated":
                presence = ".repeated"
            elif fd["label"] == "explicit" or kind == ".message":
                presence = ".explicit"
            else:
                presence = ".implicit"
            lines.append(
                f"{indent}ProtoField(name: {swift_string(fd['name'])}, number: {fd['number']}, type: {kind}, "
                f"typeName: {type_name}, presence: {presence}, index: {index}),")
        return lines

    out = []
    w = out.append
    w(f"// Generated by gateway/scripts/gen-rpc-table.py (run by gen-proto.sh) from proto/: {', '.join(served_files)}.")
    w("// Do not edit: edit the .proto (and, for a new RPC, the contract table of RPCContract.swift),")
    w("// then run gateway/scripts/gen-proto.sh. gateway/scripts/check-generated.sh fails when this is stale.")
    w("")
    w("/// The RPCs the gateway serves, named by the gRPC `:path` (gRPC PROTOCOL-HTTP2.md: Requests,")
    w("/// \"/\" Service-Name \"/\" {method name}). The raw value is the row of `RPCMethod.table` and")
    w("/// of the C table (`cs_rpc_request_descriptor`).")
    w("enum RPCMethod: Int, CaseIterable, Sendable {")
    for i, r in enumerate(rpcs):
        w(f"    case {r['case']} = {i}")
    w("}")
    w("")
    w("extension RPCMethod {")
    w("    /// One descriptor per RPC, in the order of the cases.")
    w("    static let table: [RPCDescriptor] = [")
    for i, r in enumerate(rpcs):
        w("        RPCDescriptor(")
        w(f"            path: {swift_string(r['path'])},")
        w(f"            service: {swift_string(r['service'])}, name: {swift_string(r['method'])},")
        w(f"            requestType: {swift_string(r['request'])}, responseType: {swift_string(r['response'])},")
        w(f"            serverStreaming: {'true' if r['server_stream'] else 'false'},")
        w(f"            requestFields: ProtoSchema.fields[{swift_string(r['request'])}]!,")
        w(f"            responseFields: ProtoSchema.fields[{swift_string(r['response'])}]!")
        w("        ),")
    w("    ]")
    w("")
    w("    /// `/package.Service/` of every service of proto/ (served here or by the reflection")
    w("    /// handler): a path with one of these prefixes is a gRPC path, never a REST one.")
    w("    static let servicePathPrefixes: [String] = [")
    for name in sorted({name for _, name, _, _ in services}):
        w(f"        {swift_string('/' + name + '/')},")
    w("    ]")
    w("}")
    w("")
    w("extension ProtoSchema {")
    w("    /// The fields of every message of the served .proto files, by full name, in field-number")
    w("    /// order (`index`: the field's row in its protobuf-c descriptor, which protoc-c sorts the same way).")
    w("    static let fields: [String: [ProtoField]] = [")
    for m in described:
        w(f"        {swift_string(m)}: [")
        out.extend(field_map(m, "            "))
        w("        ],")
    w("    ]")
    w("")
    w("    /// The values of every enum of the served .proto files, by full name, in declaration order.")
    w("    static let enums: [String: [(name: String, number: Int32)]] = [")
    for e in sorted(e for e in enums if enums[e][0] in served_files):
        w(f"        {swift_string(e)}: [")
        for value, number in enums[e][1]:
            w(f"            ({swift_string(value)}, {number}),")
        w("        ],")
    w("    ]")
    w("}")
    os.makedirs(os.path.dirname(os.path.abspath(swift_out)), exist_ok=True)
    with open(swift_out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")

    # The C side: descriptor addresses, taken where it is safe (C).
    headers = sorted({re.sub(r"\.proto$", ".pb-c.h", f) for f in served_files})
    os.makedirs(os.path.join(c_out, "include"), exist_ok=True)
    with open(os.path.join(c_out, "include", "cs_rpc_table.h"), "w", encoding="utf-8") as fh:
        fh.write("""/* Generated by gateway/scripts/gen-rpc-table.py. Do not edit. */
#ifndef CS_RPC_TABLE_H
#define CS_RPC_TABLE_H
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

/* The RPCs of proto/ the gateway serves, in the order of Swift's `RPCMethod`: how many, and
 * for the one at `rpc` (< cs_rpc_count()) its method path and the protobuf-c descriptors of
 * its request and response messages (static storage; NULL past the end). Swift must not take
 * a descriptor's address itself (STACK-NOTES.md). */
size_t cs_rpc_count(void);
const char *cs_rpc_path(size_t rpc);
const ProtobufCMessageDescriptor *cs_rpc_request_descriptor(size_t rpc);
const ProtobufCMessageDescriptor *cs_rpc_response_descriptor(size_t rpc);

#endif
""")
    with open(os.path.join(c_out, "rpc_table.c"), "w", encoding="utf-8") as fh:
        fh.write("/* Generated by gateway/scripts/gen-rpc-table.py from: " + " ".join(served_files) + ". Do not edit. */\n")
        fh.write('#include "cs_rpc_table.h"\n')
        for h in headers:
            fh.write(f'#include "{h}"\n')
        fh.write("\nstatic const char *const paths[] = {\n")
        for r in rpcs:
            fh.write(f'    "{r["path"]}",\n')
        fh.write("};\n\nstatic const ProtobufCMessageDescriptor *const requests[] = {\n")
        for r in rpcs:
            fh.write(f"    &{c_name(r['request'])}__descriptor,\n")
        fh.write("};\n\nstatic const ProtobufCMessageDescriptor *const responses[] = {\n")
        for r in rpcs:
            fh.write(f"    &{c_name(r['response'])}__descriptor,\n")
        fh.write("};\n\n")
        fh.write(f"size_t cs_rpc_count(void) {{\n    return {len(rpcs)};\n}}\n\n")
        for fn, array in (("const char *cs_rpc_path", "paths"),
                          ("const ProtobufCMessageDescriptor *cs_rpc_request_descriptor", "requests"),
                          ("const ProtobufCMessageDescriptor *cs_rpc_response_descriptor", "responses")):
            fh.write(f"{fn}(size_t rpc) {{\n    return rpc < {len(rpcs)} ? {array}[rpc] : NULL;\n}}\n\n")


if __name__ == "__main__":
    main()
