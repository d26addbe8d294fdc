"""Benchmark harness: tasks (test sets + metrics), systems under test, metrics with cards,
a resumable runner, results as per-utterance JSONL + aggregate JSON."""

# import names of the `[bench]` extra's packages (pyproject.toml): checked before a command scores
BENCH_MODULES = {"jiwer": "jiwer", "whisper": "openai-whisper", "resemblyzer": "resemblyzer", "pesq": "pesq",
                 "pystoi": "pystoi", "librosa": "librosa", "scipy": "scipy", "pyworld": "pyworld", "pysptk": "pysptk",
                 "speechmos": "speechmos", "pycocoevalcap": "pycocoevalcap", "matplotlib": "matplotlib"}


class MissingExtra(RuntimeError):
    pass


def require_bench(command: str) -> None:
    """Say which extra a command needs when it is not installed (a cluster node has the core only)."""
    from importlib.util import find_spec

    missing = [pkg for mod, pkg in BENCH_MODULES.items() if find_spec(mod) is None]
    if missing:
        raise MissingExtra(f"`{command}` needs uniaudio's [bench] extra, which is not installed here (missing: "
                           f"{', '.join(missing)}): pip install 'uniaudio[bench]' (or -e '.[bench]' in a checkout)")
