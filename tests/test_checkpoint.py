"""The one checkpoint module: atomic saves, weights_only loads that refuse code."""

import os

import pytest
import torch

from uniaudio import checkpoint
from uniaudio.checkpoint import CheckpointError


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/uniaudio-pwned",))


def test_round_trip_and_atomic(tmp_path):
    obj = {"model": {"w": torch.arange(6.0).view(2, 3)}, "step": 7, "rng": torch.get_rng_state(), "name": "x",
           "nested": [1, 2.5, None, {"a": True}]}
    p = checkpoint.save(obj, tmp_path / "sub" / "ck.pt")
    back = checkpoint.load(p)
    assert torch.equal(back["model"]["w"], obj["model"]["w"]) and back["nested"] == obj["nested"]
    assert [f.name for f in p.parent.iterdir()] == ["ck.pt"]  # no temporary left behind


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Boom()}, p)
    if os.path.exists("/tmp/uniaudio-pwned"):
        os.unlink("/tmp/uniaudio-pwned")
    with pytest.raises(CheckpointError, match="weights_only"):
        checkpoint.load(p)
    assert not os.path.exists("/tmp/uniaudio-pwned")


def test_missing_and_garbage_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint|refusing"):
        checkpoint.load(tmp_path / "junk.pt")


def test_the_shipped_codec_loads_with_weights_only():
    from uniaudio.tokenize.uniaudio_codec import DEFAULT_CHECKPOINT

    ck = checkpoint.load(DEFAULT_CHECKPOINT)
    assert {"config", "model", "step"} <= set(ck)
