"""`turnbench matrix`: reference-agent configurations (STT × LLM × TTS …) compared side by side."""
