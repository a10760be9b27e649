"""The generated RPC table (gateway/scripts/gen-rpc-table.py, run by gen-proto.sh): committed
output is current, and what the small parser reads from proto/ is what protoc reads.

No gateway needed. protoc-c is required, never skipped: gateway/scripts/setup.sh installs it,
and a stale table must fail here as it fails check-generated.sh.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc_tools
from google.protobuf.descriptor_pb2 import FieldDescriptorProto, FileDescriptorSet
from grpc_tools import protoc

from helpers import PROTO_DIR, ROOT

GEN_PROTO = ROOT / "gateway" / "scripts" / "gen-proto.sh"
GEN_TABLE = ROOT / "gateway" / "scripts" / "gen-rpc-table.py"
SWIFT_TABLE = ROOT / "Sources" / "Gateway" / "Codec" / "RPCDescriptors+Generated.swift"
C_TABLE = ROOT / "Sources" / "ContextProto" / "rpc_table.c"
C_HEADER = ROOT / "Sources" / "ContextProto" / "include" / "cs_rpc_table.h"


def generate(tmp_path: Path, proto_root: Path = PROTO_DIR) -> tuple[str, str]:
    c_out = tmp_path / "c"
    swift = tmp_path / "table.swift"
    subprocess.run([sys.executable, str(GEN_TABLE), str(proto_root), str(c_out), str(swift)], check=True)
    return swift.read_text(), (c_out / "rpc_table.c").read_text()


def test_committed_tables_are_current(tmp_path):
    """gen-proto.sh into a temporary folder: the Swift table and the whole of
    Sources/ContextProto (rpc_table.c included) match what is committed."""
    assert shutil.which("protoc-c"), "protoc-c missing: run gateway/scripts/setup.sh"
    out = tmp_path / "ContextProto"
    swift = tmp_path / "RPCDescriptors+Generated.swift"
    subprocess.run(["bash", str(GEN_PROTO), str(out), str(swift)], check=True, cwd=ROOT)
    assert swift.read_text() == SWIFT_TABLE.read_text(), \
        "RPCDescriptors+Generated.swift is stale: run gateway/scripts/gen-proto.sh and commit"
    assert (out / "rpc_table.c").read_text() == C_TABLE.read_text()
    assert (out / "include" / "cs_rpc_table.h").read_text() == C_HEADER.read_text()
    diff = subprocess.run(["diff", "-r", str(ROOT / "Sources" / "ContextProto"), str(out)],
                          capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout


def test_a_new_rpc_reaches_the_table(tmp_path):
    """Editing the proto is what adds an RPC: a copy with one more method yields one more case,
    row, path and descriptor (so the staleness check above can fail)."""
    copy = tmp_path / "proto"
    shutil.copytree(PROTO_DIR, copy)
    services = copy / "genesys" / "cs" / "v1" / "context_services.proto"
    text = services.read_text()
    services.write_text(text.replace(
        "  rpc QueryTasks(QueryTasksRequest) returns (QueryTasksResponse);",
        "  rpc QueryTasks(QueryTasksRequest) returns (QueryTasksResponse);\n"
        "  rpc PurgeTask(QueryTaskRequest) returns (DeleteServiceResponse);"))
    swift, c = generate(tmp_path / "new", copy)
    committed, committed_c = generate(tmp_path / "old")
    assert swift != committed and c != committed_c
    assert "case purgeTask = 11" in swift and "case healthCheck = 12" in swift
    assert '"/genesys.cs.v1.ContextServices/PurgeTask"' in swift
    assert "&genesys__cs__v1__query_task_request__descriptor," in c


def protoc_view():
    """protoc's own descriptors of the served files."""
    import tempfile
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "set.pb"
        assert protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--descriptor_set_out={out}",
                            "genesys/cs/v1/context_services.proto", "grpc/health/v1/health.proto"]) == 0
        return FileDescriptorSet.FromString(out.read_bytes())


SWIFT_TYPES = {
    FieldDescriptorProto.TYPE_INT32: "int32", FieldDescriptorProto.TYPE_INT64: "int64",
    FieldDescriptorProto.TYPE_BOOL: "bool", FieldDescriptorProto.TYPE_STRING: "string",
    FieldDescriptorProto.TYPE_ENUM: "enumeration", FieldDescriptorProto.TYPE_MESSAGE: "message",
}


def test_the_table_says_what_protoc_says():
    """Every RPC (path, request, response) and every field (number, type, presence, order) of
    the committed table, against protoc's descriptors of the same files."""
    table = SWIFT_TABLE.read_text()
    rows = re.findall(r'path: "([^"]+)",\s*service: "[^"]+", name: "[^"]+",\s*'
                      r'requestType: "([^"]+)", responseType: "([^"]+)"', table)
    expected_rows = []
    fields = {}
    for f in protoc_view().file:
        for s in f.service:
            for m in s.method:
                expected_rows.append((f"/{f.package}.{s.name}/{m.name}", m.input_type[1:], m.output_type[1:]))

        def walk(prefix, messages):
            for m in messages:
                full = f"{prefix}.{m.name}"
                fields[full] = m
                walk(full, m.nested_type)
        walk(f.package, f.message_type)
    assert rows == expected_rows
    cases = re.findall(r"^    case (\w+) = (\d+)$", table, re.M)
    assert [int(n) for _, n in cases] == list(range(len(expected_rows)))

    maps = dict(re.findall(r'^        "([\w.]+)": \[\n((?:            ProtoField\(.*\n)*)        \],', table, re.M))
    assert set(maps) == set(fields)
    for name, message in fields.items():
        got = re.findall(r'ProtoField\(name: "(\w+)", number: (\d+), type: \.(\w+), typeName: (nil|"[\w.]+"), '
                         r'presence: ([^,]+(?:\("\w+"\))?), index: (\d+)\)', maps[name])
        want = []
        for index, fd in enumerate(sorted(message.field, key=lambda x: x.number)):
            type_name = f'"{fd.type_name[1:]}"' if fd.type_name else "nil"
            if fd.label == FieldDescriptorProto.LABEL_REPEATED:
                presence = ".repeated"
            elif fd.HasField("oneof_index") and not fd.proto3_optional:
                presence = f'.oneof("{message.oneof_decl[fd.oneof_index].name}")'
            elif fd.proto3_optional or fd.type == FieldDescriptorProto.TYPE_MESSAGE:
                presence = ".explicit"
            else:
                presence = ".implicit"
            want.append((fd.name, str(fd.number), SWIFT_TYPES[fd.type], type_name, presence, str(index)))
        assert got == want, name
