"""DNSMOS (P.835 SIG/BAK/OVRL + P.808) from the ONNX models the `speechmos` package ships, as
`speechmos.dnsmos.run` computes it (its mel features and polynomial mapping are reused), but the
9.01 s windows of every clip of a batch go through each ONNX model in one call: the same numbers,
and on a GPU (`onnxruntime-gpu`, device=cuda) far fewer launches. One scorer for the benchmark's
`dnsmos` metric and the data engine's `measure: [dnsmos]` quality step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000
MIN_SECONDS = 0.5


class DNSMOSScorer:
    def __init__(self, personalized: bool = False, device: str = "cpu", max_windows: int = 32):
        try:
            import onnxruntime as ort
            import speechmos
            from speechmos.dnsmos import DNSMOS as _Speechmos
        except ImportError as e:
            raise RuntimeError(f"DNSMOS needs speechmos and onnxruntime (pip install 'uniaudio[bench]'): {e}") from None
        self.model_type = "dnsmos_personalized" if personalized else "dnsmos"
        root = Path(speechmos.__file__).parent
        self.primary = root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
        self.p808 = root / "dnsmos_models" / "model_v8.onnx"
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("dnsmos device=cuda needs onnxruntime-gpu (pip install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        # speechmos's own class, built around sessions with our providers
        self.ref = _Speechmos.__new__(_Speechmos)
        self.ref.onnx_sess = ort.InferenceSession(str(self.primary), providers=providers)
        self.ref.p808_onnx_sess = ort.InferenceSession(str(self.p808), providers=providers)
        self.providers, self.max_windows = providers, max_windows

    @staticmethod
    def windows(x: np.ndarray) -> list[np.ndarray]:
        """The 9.01 s windows speechmos scores: the clip repeated until it is that long, then
        1 s hops (same arithmetic as speechmos, including its float rounding)."""
        from speechmos.dnsmos import INPUT_LENGTH

        need = int(INPUT_LENGTH * SR)
        while len(x) < need:
            x = np.append(x, x)
        hops = int(np.floor(len(x) / SR) - INPUT_LENGTH) + 1
        segs = [x[int(i * SR): int((i + INPUT_LENGTH) * SR)] for i in range(hops)]
        return [g for g in segs if len(g) >= need]

    def _run(self, segs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """-> raw [n, 3] (sig, bak, ovr) and p808 [n] for each window, max_windows per call."""
        raw, p808 = [], []
        for i in range(0, len(segs), self.max_windows):
            chunk = segs[i:i + self.max_windows]
            x = np.stack(chunk).astype(np.float32)
            mel = np.stack([self.ref.audio_melspec(audio=g[:-160]) for g in chunk]).astype(np.float32)
            raw.append(self.ref.onnx_sess.run(None, {"input_1": x})[0])
            p808.append(self.ref.p808_onnx_sess.run(None, {"input_1": mel})[0][:, 0])
        return np.concatenate(raw), np.concatenate(p808)

    def score(self, wavs: list[np.ndarray]) -> list[dict | Exception]:
        """16 kHz clips -> {dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808} each, or the error of
        that clip (too short; an ONNX failure fails the clips that reached it, not the batch)."""
        out: list = [None] * len(wavs)
        segs, owner = [], []
        for k, w in enumerate(wavs):
            if len(w) < SR * MIN_SECONDS:
                out[k] = ValueError(f"DNSMOS needs at least {MIN_SECONDS} s, got {len(w) / SR:.3f} s")
                continue
            win = self.windows(np.clip(w, -1.0, 1.0))  # speechmos refuses |x| > 1 (resampling rings a hair past)
            segs += win
            owner += [k] * len(win)
        if segs:
            try:
                raw, p808 = self._run(segs)
            except Exception as e:  # noqa: BLE001
                for k in set(owner):
                    out[k] = RuntimeError(f"DNSMOS inference failed: {e}")
                return out
            owner_a = np.asarray(owner)
            personalized = self.model_type == "dnsmos_personalized"
            for k in sorted(set(owner)):
                sel = owner_a == k
                sig, bak, ovr = self.ref.get_polyfit_val(raw[sel, 0], raw[sel, 1], raw[sel, 2], personalized)
                out[k] = {"dnsmos_ovrl": float(np.mean(ovr)), "dnsmos_sig": float(np.mean(sig)),
                          "dnsmos_bak": float(np.mean(bak)), "dnsmos_p808": float(np.mean(p808[sel]))}
        return out
