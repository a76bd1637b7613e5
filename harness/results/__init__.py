"""The run folder: run.json, turns.jsonl (appended as turns complete), summary.json."""
