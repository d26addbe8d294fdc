"""WER and CER. Corpus WER = (S + D + I) / N over the test set (VERSA, Open ASR Leaderboard);
the per-utterance mean (Seed-TTS-eval's average) is reported beside it, labelled. Text is
normalised with Whisper's EnglishTextNormalizer. When a sample has audio but no text (TTS),
it is transcribed with the configured ASR backend first."""

from __future__ import annotations

import math

from ... import textnorm
from .base import Metric, MetricError, Value, register, sha256_of, versions


class _ErrorRate(Metric):
    needs = ("ref_text", "hyp_text")
    unit = "words"
    aggregation = "corpus: sum(S+D+I) / sum(N) over items; *_utt_mean: mean of per-item rates (labelled)"

    def __init__(self, asr_backend: str = "faster-whisper", asr_model: str | None = None,
                 normalizer_name: str = "whisper-english", language: str = "en", asr_options: dict | None = None,
                 normalizer: str | None = None):
        normalizer_name = normalizer or normalizer_name  # `--metric-option wer.normalizer=...` names it too
        try:
            self.normalize = textnorm.text_normalizer(normalizer_name, language)
            self.hypothesis_rule = textnorm.hypothesis_rule(normalizer_name, language)
        except textnorm.NormalizerError as e:
            raise MetricError(str(e)) from None
        self.normalizer_name = normalizer_name
        self.asr_backend, self.asr_model, self.language = asr_backend, asr_model, language
        # passed to the backend, e.g. {device: cuda, compute_type: float16} for faster-whisper on a GPU
        if asr_options is not None and not isinstance(asr_options, dict):
            raise TypeError(f"asr_options must be a mapping, e.g. {{device: cuda}}; got {asr_options!r}")
        self.asr_options = dict(asr_options or {})
        self._asr = None

    @property
    def asr(self):
        if self._asr is None:
            from ... import transcribers as asr

            kw = {"model": self.asr_model} if self.asr_model else {}
            try:
                self._asr = asr.load(self.asr_backend, language=self.language, **kw, **self.asr_options)
            except TypeError as e:  # an option this backend does not take
                raise TypeError(f"ASR backend {self.asr_backend!r} rejected asr_options {self.asr_options}: {e}") from None
        return self._asr

    def counts(self, ref: str, hyp: str) -> dict:
        return textnorm.error_counts(ref, hyp, self.unit)

    def score(self, batch):
        need_asr = [s for s in batch if s.hyp_text is None and s.hyp_audio is not None]
        transcripts, asr_error = {}, None
        if need_asr:
            try:
                transcripts = dict(zip((s.id for s in need_asr), self.asr.transcribe([s.hyp_audio for s in need_asr])))
            except (RuntimeError, OSError, ImportError) as e:  # the ASR model is not here (offline): NaN, the reason
                asr_error = MetricError(f"ASR {self.asr_backend} {self.asr_model or ''}: {e}")
        out = []
        for s in batch:
            try:
                hyp = s.hyp_text if s.hyp_text is not None else transcripts.get(s.id)
                if hyp is None:
                    raise asr_error or MetricError("no hypothesis text or audio")
                if s.ref_text is None:
                    raise MetricError("no reference text")
                ref_n, hyp_n = self.normalize(s.ref_text), self.normalize(self.hypothesis_rule(hyp))
                if not ref_n.strip():
                    raise MetricError(f"reference is empty after normalisation: {s.ref_text!r}")
                c = self.counts(ref_n, hyp_n)
                n = c["S"] + c["D"] + c["H"]
                out.append({self.name: (c["S"] + c["D"] + c["I"]) / n, f"{self.name}_S": c["S"],
                            f"{self.name}_D": c["D"], f"{self.name}_I": c["I"], f"{self.name}_N": n,
                            **({"transcript": hyp} if s.id in transcripts else {})})
            except Exception as e:
                out.append(e)
        return out

    def aggregate(self, rows):
        ok = [r for r in rows if math.isfinite(r.get(self.name, float("nan")))]
        if not ok:
            return {self.name: float("nan"), f"{self.name}_utt_mean": float("nan")}
        errs = sum(r[f"{self.name}_S"] + r[f"{self.name}_D"] + r[f"{self.name}_I"] for r in ok)
        n = sum(r[f"{self.name}_N"] for r in ok)
        return {self.name: errs / n, f"{self.name}_utt_mean": sum(r[self.name] for r in ok) / len(ok),
                f"{self.name}_errors": errs, f"{self.name}_ref_{self.unit}": n}

    def card(self):
        c = dict(super().card(), normalizer=self.normalizer_name, normalization=textnorm.NORMALIZERS[self.normalizer_name],
                 unit=self.unit, versions=versions("jiwer", "openai-whisper", "zhon"))
        if self._asr is not None:  # only when this run transcribed audio
            a = self._asr
            c["asr"] = {"backend": a.backend, "model": a.model_name, "options": self.asr_options,
                        "checksum": sha256_of(a.weights_path) if a.weights_path else None,
                        "paper_setting": "Whisper large-v3", "language": self.language, "decoding": a.decoding,
                        "versions": versions("faster-whisper", "ctranslate2", "openai-whisper", "transformers")}
        return c


@register("wer")
class WER(_ErrorRate):
    name, unit = "wer", "words"
    values = {"wer": Value("lower", "%")}


@register("cer")
class CER(_ErrorRate):
    name, unit = "cer", "characters"
    values = {"cer": Value("lower", "%")}
