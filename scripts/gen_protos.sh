#!/usr/bin/env bash
# Regenerates the committed Python stubs under clients/ from protos/ (make proto).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# The mypy-protobuf plugins live beside the interpreter.
export PATH="$(dirname "$PY"):$PATH"
out=clients
rm -f "$out"/imagegateway/v1/*_pb2*.py "$out"/imagegateway/v1/*_pb2*.pyi
mkdir -p "$out/imagegateway/v1"
"$PY" -m grpc_tools.protoc -I protos \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  protos/imagegateway/v1/*.proto
touch "$out/imagegateway/v1/__init__.py"
