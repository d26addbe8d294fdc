"""Protocol presets: the metric models and options a publication scores with, by name.

`benchmark run --protocol NAME` applies a preset's metric options (a `--metric-option` given
beside it still wins, and is recorded); a suite built by `benchmark suite build` names its
preset in suite.json and a run on it uses that one unless told otherwise. Without either, the
offline defaults apply and results say so (`paper_setting: false`). A preset never falls back
to another model: a model that is not here makes each item NaN with the model's name and how to
fetch it (the metric's own offline error), under the preset's name."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    source: str
    metric_options: dict = field(default_factory=dict)  # metric -> options, as --metric-option sets them
    paper_setting: bool = True


PROTOCOLS = {p.name: p for p in (
    Protocol("offline-defaults", "uniaudio's offline models (Whisper tiny.en via faster-whisper, resemblyzer SIM, "
             "...): quick and reproducible here, not any paper's setting", "uniaudio", paper_setting=False),
    Protocol("open-asr-leaderboard", "WER after openai-whisper's EnglishTextNormalizer, corpus WER",
             "huggingface/open_asr_leaderboard (normalizer: Whisper's English text normaliser)",
             {"wer": {"normalizer": "whisper-english"}, "cer": {"normalizer": "whisper-english"}}),
    Protocol("seed-tts-eval", "WER by Whisper-large-v3 (transformers, English transcription) after Seed-TTS-eval's "
             "text rule, reported as the per-utterance mean; SIM by WavLM-large + ECAPA-TDNN speaker verification",
             "BytedanceSpeech/seed-tts-eval run_wer.py and cal_sim.sh",
             {"wer": {"normalizer": "seed-tts-eval", "asr_backend": "transformers",
                      "asr_model": "openai/whisper-large-v3"},
              "sim": {"backend": "wavlm-large-ecapa"}}),
    Protocol("seed-tts-eval-zh", "CER by Paraformer-zh (FunASR) after Seed-TTS-eval's zh text rule (zhconv to "
             "simplified on the transcript, punctuation removed, every character a word: the `wer` value is the CER), "
             "reported as the per-utterance mean; SIM by WavLM-large + ECAPA-TDNN speaker verification",
             "BytedanceSpeech/seed-tts-eval run_wer.py (lang zh) and cal_sim.sh",
             {"wer": {"normalizer": "seed-tts-eval", "language": "zh", "asr_backend": "funasr",
                      "asr_model": "paraformer-zh"},
              "sim": {"backend": "wavlm-large-ecapa"}}),
    Protocol("aishell-cer", "Mandarin CER on characters as WeNet's AISHELL-1 recipe scores it (tools/compute-cer.py: "
             "the same counts on 12 checked pairs), plus folds it lacks: every punctuation mark removed, full-width "
             "to half-width, transcripts to simplified characters; the `wer` value reads characters too "
             "(Seed-TTS-eval's zh rule)",
             "AISHELL-1 recipes (WeNet tools/compute-cer.py; Kaldi / ESPnet compute the same character rate)",
             {"cer": {"normalizer": "zh-cer", "language": "zh"}, "wer": {"normalizer": "seed-tts-eval", "language": "zh"}}),
    Protocol("demo-zh", "the demo's Mandarin set: asr by CER on characters (the aishell-cer rule); tts by the CER "
             "of Paraformer-zh's transcript after Seed-TTS-eval's zh rule (its test-zh setting; NaN with the fetch "
             "step where FunASR or its model is missing); SIM, UTMOS and DNSMOS as offline-defaults",
             "uniaudio (the demo), with Seed-TTS-eval's zh ASR and text rule",
             {"cer": {"normalizer": "zh-cer", "language": "zh"},
              "wer": {"normalizer": "seed-tts-eval", "language": "zh", "asr_backend": "funasr",
                      "asr_model": "paraformer-zh"}}, paper_setting=False),
    Protocol("fleurs", "WER and CER after Whisper's BasicTextNormalizer, the normaliser Whisper's paper names for "
             "its multilingual FLEURS figures (CER is the figure for languages written without spaces), over the "
             "test set as Whisper's notebooks compute it (the normaliser on every line, then jiwer over the lists: "
             "the same value on 6 lines in five languages)", "openai/whisper (its multilingual evaluation)",
             {"wer": {"normalizer": "whisper-basic"}, "cer": {"normalizer": "whisper-basic"}}),
    Protocol("audioldm-eval", "audioldm_eval's EvaluationHelper(16000) with backbone='cnn14' as its README runs it: "
             "FAD on VGGish embeddings (no PCA, no activation, 16 kHz), KL(reference || generated) of softmaxed "
             "PANNs CNN14 16 kHz logits (its kullback_leibler_divergence_softmax, without its 1e-6 inside the log); "
             "its FD (CNN14 2048-d) is `--metric-option fad.embedder=cnn14`, its IS/KID/LSD are not scored",
             "haoheliu/audioldm_eval eval.py (EvaluationHelper, calculate_kl)",
             {"fad": {"embedder": "vggish"}, "kl": {"tagger": "cnn14", "sample_rate": 16000}}),
    Protocol("uniaudio", "the UniAudio papers' own evaluation scripts: SIM by WavLM-large + ECAPA-TDNN "
             "(wavlm_large_finetune.pth); FAD/KL as audioldm_eval at 16 kHz (cnn14 backbone); ViSQOL speech mode "
             "with its lattice model; DNSMOS personalized (dnsmos_local.py -p); PESQ wide-band at 16 kHz; WER as "
             "UniAudio 2.0's cal_wer.sh runs it (Seed-TTS-eval's run_wer.py: Whisper-large-v3, its text rule)",
             "yangdongchao/UniAudio tools/evaluation (spk_sim_tts.py, compute_fad_kl.py, compute_visqol.py, "
             "compute_dnsmos.sh, compute_pesq.py); yangdongchao/UniAudio2 metrics/tts-eval/cal_wer.sh and "
             "metrics/audiogen_tools/fad_kl.py (backbone cnn14)",
             {"wer": {"normalizer": "seed-tts-eval", "asr_backend": "transformers",
                      "asr_model": "openai/whisper-large-v3"},
              "sim": {"backend": "wavlm-large-ecapa"},
              "fad": {"embedder": "vggish"}, "kl": {"tagger": "cnn14", "sample_rate": 16000},
              "visqol": {"mapper": "lattice"}, "dnsmos": {"personalized": True}}),
    Protocol("lm-eval", "MMLU as lm-evaluation-harness 0.4.13 scores it (5-shot, log-likelihood of ' A'..' D', "
             "special tokens as the tokenizer adds them)", "EleutherAI/lm-evaluation-harness 0.4.13, task mmlu"),
)}


def resolve(name: str | None, suite_card: dict | None, user: dict[str, dict] | None) -> tuple[dict, dict]:
    """(metric options to run with, the protocol record for results): the named preset, else the
    suite's, else the offline defaults; `user` options (--metric-option) override the preset's."""
    chosen = name or (suite_card or {}).get("protocol_preset") or "offline-defaults"
    if chosen not in PROTOCOLS:
        raise ValueError(f"unknown protocol {chosen!r}; known: {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[chosen]
    options = {m: dict(o) for m, o in p.metric_options.items()}
    for m, o in (user or {}).items():
        options.setdefault(m, {}).update(o)
    record = {"name": p.name, "paper_setting": p.paper_setting and not user, "source": p.source,
              "description": p.description, "overridden": user or {}}
    return options, record
