#!/usr/bin/env bash
# Build the wheel, install only it into a fresh virtual environment, and run the smoke scenario
# against the oracle from an empty directory: the package works after `pip install`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "wheel smoke: building the wheel …" >&2
"$PY" -m pip wheel -q --no-deps -w "$tmp/dist" . >/dev/null
"$PY" -m venv "$tmp/venv"
echo "wheel smoke: installing $(basename "$tmp"/dist/turnbench-*.whl) into a fresh virtual environment …" >&2
"$tmp/venv/bin/python" -m pip install -q "$tmp"/dist/turnbench-*.whl
mkdir "$tmp/empty" && cd "$tmp/empty"
"$tmp/venv/bin/turnbench" scenarios list
"$tmp/venv/bin/turnbench" run smoke --target oracle --no-progress
echo "wheel smoke: ok" >&2
