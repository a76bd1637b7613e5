"""Component benchmarks: one stage's providers side by side on fixed inputs (`turnbench bench
stt|llm|tts`). Component numbers, not end-to-end: they say where a provider's time goes, not what a
caller hears (that is `turnbench run`)."""
