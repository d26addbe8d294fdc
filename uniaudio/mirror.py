"""A local working copy of an output folder that lives in object storage.

The trainer and the benchmark runner write folders of many files, some appended line by line
(log.jsonl, items.jsonl): object storage has no append and no rename. When their output is a
URI they work in a local copy instead and publish it with `push`; `pull` makes the copy equal to
what the store holds (a resume on a fresh machine, or after a crash on this one: the store is
the truth, whatever this machine wrote but did not push is replaced).

`push` uploads the files that changed since the last pull or push, in the order they were last
written, and removes the objects whose files are gone. So a file that marks others complete
(last.pt after model.pt, aggregate.json after items.jsonl) is uploaded after them, and a crash
in the middle of a push leaves the older marker in place: the next run resumes from it, and the
resume rules of each command (logs truncated to the checkpoint's step, items redone when their
task has no aggregate) do the rest. All I/O goes through `storage`."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from . import storage
from .files import safe_name


def cache_root() -> Path:
    """Where local copies live: $UNIAUDIO_CACHE/remote, else ~/.cache/uniaudio/remote."""
    base = os.environ.get("UNIAUDIO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "uniaudio")
    return Path(base) / "remote"


class Mirror:
    def __init__(self, uri: str, local: str | os.PathLike | None = None):
        if not storage.is_uri(uri):
            raise ValueError(f"{uri} is not a URI: a local folder needs no mirror")
        self.uri = uri.rstrip("/")
        digest = hashlib.blake2b(self.uri.encode(), digest_size=8).hexdigest()
        name = safe_name(self.uri.rsplit("/", 1)[-1] or "root")
        self.local = Path(local) if local else cache_root() / f"{name}-{digest}"
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) as last synced

    def _files(self) -> dict[str, tuple[int, int]]:
        found = {}
        if self.local.is_dir():
            for p in self.local.rglob("*"):
                if p.is_file() and not p.name.startswith("."):  # temporaries of atomic writes
                    st = p.stat()
                    found[p.relative_to(self.local).as_posix()] = (st.st_size, st.st_mtime_ns)
        return found

    def pull(self, same_size_kept: bool = False) -> "Mirror":
        """Make the local copy equal to the store's objects under the prefix (each downloaded,
        files the store lacks removed). `same_size_kept`: a file here of the object's size is
        kept (read-only inputs such as test sets, downloaded once)."""
        self.local.mkdir(parents=True, exist_ok=True)
        remote = storage.listing(self.uri)
        here = self._files()
        root = self.local.resolve()
        for rel in remote:  # keys are data from elsewhere ("../x"): all checked before anything is written
            target = (self.local / rel).resolve()
            if not target.is_relative_to(root) or target == root:
                raise storage.StorageError(f"{storage.join(self.uri, rel)}: an object key that would land outside "
                                           f"the local copy {self.local}; refusing to pull this prefix")
        for rel, size in remote.items():
            if not (same_size_kept and here.get(rel, (None,))[0] == size):
                storage.download(storage.join(self.uri, rel), str(self.local / rel))
        for rel in set(here) - set(remote):
            (self.local / rel).unlink()
        self._pushed = self._files()
        return self

    def push(self) -> int:
        """Upload what changed since the last pull or push, oldest write first; delete the
        objects of files removed here. Returns the number of files uploaded."""
        now = self._files()
        changed = sorted((rel for rel, st in now.items() if self._pushed.get(rel) != st), key=lambda r: now[r][1])
        for rel in changed:
            storage.upload(str(self.local / rel), storage.join(self.uri, rel))
        for rel in set(self._pushed) - set(now):
            storage.delete(storage.join(self.uri, rel))
        self._pushed = now
        return len(changed)

    def discard(self) -> None:
        """Remove the local copy (the store keeps everything pushed)."""
        shutil.rmtree(self.local, ignore_errors=True)
