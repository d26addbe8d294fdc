"""DNSMOS: the batched metric gives speechmos's numbers, item by item."""

import math

import numpy as np
import pytest

from uniaudio import audio
from uniaudio.benchmark import metrics as M
from uniaudio.pipeline.recipes import records

SR = 16000


@pytest.mark.slow
def test_batched_dnsmos_equals_speechmos_per_clip(demo_root):
    from speechmos import dnsmos

    speech = sorted(records("librispeech", demo_root / "LibriSpeech"), key=lambda r: r.id)
    clips = [audio.load(speech[0].path, SR)[0], audio.load(speech[1].path, SR)[0][: int(0.7 * SR)],
             np.concatenate([audio.load(r.path, SR)[0] for r in speech[2:6]])]  # short, 0.7 s, > 9.01 s
    assert len(clips[2]) > 9.01 * SR
    samples = [M.Sample(str(i), hyp_audio=c) for i, c in enumerate(clips)]
    samples.insert(1, M.Sample("short", hyp_audio=clips[0][: SR // 4]))  # fails alone, not the batch
    metric = M.get("dnsmos", max_windows=5)  # several ONNX calls, windows of two clips in one call
    got = metric.score(samples)
    assert isinstance(got[1], M.MetricError) and "0.5 s" in str(got[1])
    for c, g in zip(clips, [got[0], got[2], got[3]]):
        want = dnsmos.run(c, SR)
        for ours, theirs in (("dnsmos_ovrl", "ovrl_mos"), ("dnsmos_sig", "sig_mos"), ("dnsmos_bak", "bak_mos"),
                             ("dnsmos_p808", "p808_mos")):
            assert math.isclose(g[ours], float(want[theirs]), rel_tol=1e-4), (ours, g[ours], want[theirs])


def test_windows_follow_speechmos_tiling():
    from uniaudio.benchmark.metrics.mos import DNSMOS

    x = np.arange(int(3.8 * SR), dtype=np.float32)
    w = DNSMOS.windows(x)
    assert len(w) == 6 and all(len(g) == int(9.01 * SR) for g in w)  # 3.8 s tiled to 15.2 s: int(15 - 9.01) + 1 hops
    assert np.array_equal(w[1][:10], np.concatenate([x, x])[SR: SR + 10])


def test_dnsmos_cuda_without_onnxruntime_gpu_is_a_clear_error():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        M.get("dnsmos", device="cuda")
