"""The CLI is a client of the gateway: no module under ``imagegateway_server/cli/`` imports generated
code or gRPC, every call goes through the client library (``imagegateway``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import imagegateway_server.cli

CLI_DIR = Path(imagegateway_server.cli.__file__).parent


def generated_imports(source: str, package: str = "imagegateway_server.cli") -> list[str]:
    """The modules ``source`` imports that are generated code (or gRPC itself), as written."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package the module sits in
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # ``from imagegateway import v1`` imports a module by name, so each name may be one.
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.extend(module for module in modules if _is_generated(module))
    return found


def _is_generated(module: str) -> bool:
    parts = module.split(".")
    if parts[0] in ("grpc", "grpc_status"):
        return True
    if module == "imagegateway.v1" or module.startswith("imagegateway.v1."):
        return True
    # google.protobuf's own well-known types (timestamp_pb2) are the protobuf runtime, not our gencode.
    return parts[:2] != ["google", "protobuf"] and any(p.endswith(("_pb2", "_pb2_grpc")) for p in parts)


def test_the_checker_catches_every_spelling_of_a_generated_import() -> None:
    assert generated_imports("from imagegateway.v1 import logs_pb2")
    assert generated_imports("import imagegateway.v1.keys_pb2 as keys")
    assert generated_imports("from imagegateway import v1")
    assert generated_imports("from imagegateway.v1.service_pb2_grpc import ImageGatewayStub")
    assert generated_imports("import grpc")
    assert generated_imports("def f():\n    from imagegateway.v1 import images_pb2\n")  # a lazy import too
    assert generated_imports("from ..v1 import logs_pb2", package="imagegateway.tools")
    assert not generated_imports("from imagegateway import ImageGatewayClient")
    assert not generated_imports("from imagegateway.types import RequestLog")
    assert not generated_imports("from google.protobuf import json_format, timestamp_pb2")


@pytest.mark.parametrize("path", sorted(CLI_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_cli_module_imports_generated_code(path: Path) -> None:
    assert generated_imports(path.read_text(encoding="utf-8")) == []


def test_the_cli_package_holds_the_command_modules() -> None:
    names = {p.stem for p in CLI_DIR.glob("*.py")}
    assert {"__init__", "parser", "output", "follow", "configs", "logs"} <= names
