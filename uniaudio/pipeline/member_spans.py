"""Reading a decode task's container members in runs (a speed trick, kept apart).

A shard's items from tar shards are members of a few containers (the planner places a
container's items together). Read one at a time, each member costs an open and a ranged read:
on object storage a HEAD and a GET request. `MemberSpans` is given the task's paths in the
order it will read them; asked for a tar member, it reads in one request the run of following
members of the same tar that lie close together (gaps under GAP bytes, the run under SPAN
bytes) and serves them from memory, holding one run at a time. Anything else (files, Parquet
members, which storage.py caches per row group) it leaves to `audio.load`."""

from __future__ import annotations

from .. import storage

GAP = 1 << 20  # bytes of other members (sidecars) read through rather than split the run
SPAN = 32 << 20  # at most this much audio in memory per decode task


def read_order(path: str, offset: float | None = 0.0) -> tuple:
    """The order a task reads its rows in: by container, then position inside it (numerically:
    member offsets are digits in the path), then the window's start."""
    m = storage.parse_member(path)
    if m is None:
        return (path, 0, 0, offset or 0.0)
    return (m.container, m.fields[0], m.fields[1] if m.kind == "parquet" else 0, offset or 0.0)


class MemberSpans:
    def __init__(self, paths: list[str]):
        self.members = []  # (path, container, offset, size) of each tar member, in read order
        for p in dict.fromkeys(paths):  # a member read twice (two windows of one item) is listed once
            m = storage.parse_member(p)
            if m is not None and m.kind == "tar":
                self.members.append((p, m.container, m.fields[0], m.fields[1]))
        self.at = {p: i for i, (p, *_rest) in enumerate(self.members)}
        self.held: dict[str, bytes] = {}
        self.requests = 0  # reads issued (for the benchmark and the tests)

    def read(self, path: str) -> bytes | None:
        """The member's bytes, or None when the caller should read it itself (not a tar
        member, or its run could not be read: the item's own read then says why)."""
        if path in self.held:
            return self.held[path]
        i = self.at.get(path)
        if i is None:
            return None
        _, container, start, size = self.members[i]
        end, j = start + size, i + 1
        while j < len(self.members):
            _, c, off, n = self.members[j]
            if c != container or off < end or off - end > GAP or off + n - start > SPAN:
                break
            end, j = off + n, j + 1
        try:
            data = storage.read_range(container, start, end - start)
        except storage.StorageError as e:
            if e.kind in ("denied", "unreachable"):
                raise
            return None  # e.g. a truncated tar: the items before the damage are read one by one
        self.requests += 1
        self.held = {p: data[off - start: off - start + n] for p, _, off, n in self.members[i:j]}
        return self.held[path]
