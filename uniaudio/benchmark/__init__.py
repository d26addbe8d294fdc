"""Benchmark harness: tasks (test sets + metrics), systems under test, metrics with cards,
a resumable runner, results as per-utterance JSONL + aggregate JSON."""
