"""The README's Python example, run as written: the commands that make the stubs with
grpc_tools.protoc, then example.py, against a fresh gateway (its address in place of
127.0.0.1:50051). Only the `pip install` line is left out: this venv has both packages."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import ROOT

FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def readme_blocks() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text()
    blocks = FENCE.findall(text)
    shell = next(body for lang, body in blocks if lang == "sh" and "grpc_tools.protoc" in body)
    python = next(body for lang, body in blocks if lang == "python" and "ContextServicesStub" in body)
    return shell, python


def test_the_python_example_runs_as_written(start_gateway, tmp_path):
    shell, python = readme_blocks()
    gw = start_gateway(memory=True)
    (tmp_path / "proto").symlink_to(ROOT / "proto")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `python3` is this venv's (a wrapper: a symlink would lose the venv and its packages).
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    (tmp_path / "example.py").write_text(python.replace("127.0.0.1:50051", gw.target))
    commands = [line for line in shell.splitlines() if line.strip() and "pip install" not in line]
    assert any("grpc_tools.protoc" in c for c in commands) and any("example.py" in c for c in commands)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(commands)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stdout + out.stderr
    expected = re.search(r"^# (.+)$", python.split("print(", 1)[1], re.M).group(1)
    assert out.stdout.strip() == expected, out.stdout
    assert (tmp_path / "stubs" / "genesys" / "cs" / "v1" / "context_services_pb2.py").exists()
