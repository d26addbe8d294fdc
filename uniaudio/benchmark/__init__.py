"""Benchmark harness: tasks (test sets + metrics), systems under test, metrics with cards,
a resumable runner, results as per-utterance JSONL + aggregate JSON."""

class MissingExtra(RuntimeError):
    pass


def bench_requirements() -> list[str]:
    """Distribution names of the `[bench]` extra, from uniaudio's installed metadata (pyproject.toml
    is the one list); empty when uniaudio runs from a source tree without being installed."""
    import re
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires("uniaudio") or []
    except PackageNotFoundError:
        return []
    return [re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in reqs if re.search(r"extra\s*==\s*['\"]bench['\"]", r)]


def require_bench(command: str) -> None:
    """Say which extra a command needs when it is not installed (a cluster node has the core only)."""
    from importlib.metadata import PackageNotFoundError, version

    missing = []
    for dist in bench_requirements():
        try:
            version(dist)
        except PackageNotFoundError:
            missing.append(dist)
    if missing:
        raise MissingExtra(f"`{command}` needs uniaudio's [bench] extra, which is not installed here (missing: "
                           f"{', '.join(missing)}): pip install 'uniaudio[bench]' (or -e '.[bench]' in a checkout)")
