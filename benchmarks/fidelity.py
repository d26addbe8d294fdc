"""Differential fidelity checks: our metric or scorer and its reference implementation on the same
inputs, the largest difference printed. The reference is installed from the package index into
a virtualenv of its own (its pins may clash with ours), so this is a benchmark script, not CI.

    python benchmarks/fidelity.py --against lm-eval [--venv DIR]
    python benchmarks/fidelity.py --against torchmetrics    # SI-SDR, PESQ-wb, STOI, ESTOI
    python benchmarks/fidelity.py --against jiwer           # corpus WER / CER after our normaliser
    python benchmarks/fidelity.py --against speechmos       # DNSMOS (batched windows) vs speechmos.dnsmos.run
    python benchmarks/fidelity.py --against fadtk           # FAD on the same embeddings vs fadtk's functions
    python benchmarks/fidelity.py --against unispeech [--reference SEED_TTS_EVAL_CHECKOUT]  # SIM model
    python benchmarks/fidelity.py --against seed-tts-eval [--reference SEED_TTS_EVAL_CHECKOUT]  # text rule, zh + en
    python benchmarks/fidelity.py --against wenet-cer [--reference WENET_CHECKOUT]  # aishell-cer vs compute-cer.py

lm-eval: MMLU log-likelihoods of lm-evaluation-harness's `hf` model (HFLM.loglikelihood, the
installed release) vs `uniaudio.benchmark.tasks.mmlu.HFCausalLM`, on the packaged 15-question
MMLU-layout demo set, for two tiny saved Llamas (random weights): one whose tokenizer prepends
its BOS, one whose tokenizer adds nothing. Goal: the same letters, log-likelihoods within 1e-3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REFERENCE = {"lm-eval": ["lm_eval[hf]==0.4.*", "torch==2.13.0"],
             "torchmetrics": [], "jiwer": [],  # uniaudio's dev / bench dependencies already
             "unispeech": [], "speechmos": [], "seed-tts-eval": [], "wenet-cer": [],
             "fadtk": ["fadtk==1.*"]}  # its wheel only (--no-deps): its top imports torchaudio, CUDA torch  # plain torch files from seed-tts-eval (benchmarks/fidelity_unispeech.py)


def venv_python(venv: Path, packages: list[str]) -> Path:
    """A virtualenv holding the reference packages (made once when `venv` does not exist yet)."""
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True)
    return py


def tiny_llamas(root: Path, questions: list[str]) -> dict[str, Path]:
    """Two tiny Llamas (the same random weights) on a byte-level BPE trained on the prompts: one
    tokenizer prepends <s> (as Llama's does), the other adds no special token."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(questions, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=4096, bos_token_id=1, eos_token_id=2))
    out = {}
    for name, post in (("bos", processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])),
                       ("plain", None)):
        t = Tokenizer.from_str(tok.to_str())
        if post is not None:
            t.post_processor = post
        d = root / name
        PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(d)
        model.save_pretrained(d)
        out[name] = d
    return out


REF_SCRIPT = r"""
import json, sys
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
import lm_eval
model_dir, requests_file, out_file = sys.argv[1:4]
reqs = json.load(open(requests_file))
lm = HFLM(pretrained=model_dir, device="cpu", batch_size=1)
inst = [Instance(request_type="loglikelihood", doc={}, arguments=(c, k), idx=i) for i, (c, k) in enumerate(reqs)]
res = lm.loglikelihood(inst)
json.dump({"version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "?",
           "loglikelihoods": [float(r[0]) for r in res]}, open(out_file, "w"))
"""


def against_lm_eval(venv: Path) -> None:
    from uniaudio.benchmark.tasks import mmlu

    data = mmlu.load(mmlu.DEMO)
    prompts = [(mmlu.prompt(q, dev[:5]), q.answer) for _, (dev, test) in sorted(data.items()) for q in test]
    py = venv_python(venv, REFERENCE["lm-eval"])
    with tempfile.TemporaryDirectory() as tmp:
        models = tiny_llamas(Path(tmp), [p for p, _ in prompts])
        requests = [(ctx, f" {letter}") for ctx, _ in prompts for letter in mmlu.LETTERS]
        (Path(tmp) / "requests.json").write_text(json.dumps(requests))
        print(f"{len(prompts)} questions x 4 letters, lm-eval's HFLM vs ours")
        print(f"{'tokenizer':10s} {'BOS added':>9s} {'max |dLL|':>10s} {'letters same':>13s}  reference")
        for name, d in models.items():
            subprocess.run([str(py), "-c", REF_SCRIPT, str(d), str(Path(tmp) / "requests.json"),
                            str(Path(tmp) / f"ref-{name}.json")], check=True, capture_output=True)
            ref = json.loads((Path(tmp) / f"ref-{name}.json").read_text())
            # ours as it scores by default; for the BOS tokenizer also the pre-0.4.13 rule (never a BOS),
            # which shows the size of the difference the current rule removes
            runs = [("", None)] + ([(" (old rule: --no-add-bos-token)", False)] if name == "bos" else [])
            for label, bos in runs:
                lm = mmlu.HFCausalLM(str(d), add_bos_token=bos)
                ours = [v for ctx, _ in prompts for v in lm.loglikelihood(ctx, [f" {x}" for x in mmlu.LETTERS])]
                diff = max(abs(a - b) for a, b in zip(ours, ref["loglikelihoods"]))
                same = sum(a == b for a, b in zip(_picks(ours), _picks(ref["loglikelihoods"])))
                print(f"{name:10s} {str(lm.settings()['bos_added']):>9s} {diff:10.2e} {same:>6d}/{len(prompts):<6d}  "
                      f"lm-eval {ref['version']}{label}")


def _speech_pairs(n: int = 8) -> list[tuple]:
    """(clean, degraded) 16 kHz pairs: ljspeech-mini (real speech) under noise at 0..15 dB SNR."""
    import numpy as np

    from uniaudio import audio
    from uniaudio.benchmark.suites import find_ljspeech_mini

    root = find_ljspeech_mini()
    if root is None:
        raise SystemExit("ljspeech-mini not found (../shared/data/ljspeech-mini)")
    rng = np.random.default_rng(0)
    pairs = []
    for k, f in enumerate(sorted((root / "wavs").glob("*.wav"))[:n]):
        clean, _ = audio.load(f, 16000)
        noise = rng.standard_normal(len(clean)).astype(np.float32)
        noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** ((15 - 2 * k) / 10))
        pairs.append((clean, (clean + noise).astype(np.float32)))
    return pairs


def against_torchmetrics() -> None:
    import torch
    from torchmetrics.functional.audio import (perceptual_evaluation_speech_quality,
                                               scale_invariant_signal_distortion_ratio,
                                               short_time_objective_intelligibility)

    from uniaudio.benchmark import metrics as M

    pairs = _speech_pairs()
    ours = {"si_sdr": M.get("si_sdr"), "pesq": M.get("pesq"), "stoi": M.get("stoi"), "estoi": M.get("stoi", extended=True)}
    ref = {"si_sdr": lambda c, d: scale_invariant_signal_distortion_ratio(d, c),
           "pesq": lambda c, d: perceptual_evaluation_speech_quality(d, c, 16000, "wb"),
           "stoi": lambda c, d: short_time_objective_intelligibility(d, c, 16000, extended=False),
           "estoi": lambda c, d: short_time_objective_intelligibility(d, c, 16000, extended=True)}
    print(f"{len(pairs)} ljspeech-mini utterances, noise 15 .. 1 dB SNR: uniaudio vs torchmetrics")
    print(f"{'metric':8s} {'max |diff|':>11s} {'range of values':>20s}")
    for key, metric in ours.items():
        diffs, vals = [], []
        for clean, deg in pairs:
            a = metric.score([M.Sample("x", ref_audio=clean, hyp_audio=deg)])[0][key]
            b = float(ref[key](torch.from_numpy(clean).double(), torch.from_numpy(deg).double()))
            diffs.append(abs(a - b))
            vals.append(a)
        print(f"{key:8s} {max(diffs):11.2e} {min(vals):9.3f} .. {max(vals):7.3f}")


def against_jiwer() -> None:
    import jiwer

    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.suites import find_ljspeech_mini

    lines = [line.split("|") for line in (find_ljspeech_mini() / "metadata.csv").read_text().splitlines()]
    refs = [norm for _, _, norm in lines]
    # hypotheses with planted errors: a word dropped, one doubled, one replaced, numbers as digits
    hyps = []
    for k, r in enumerate(refs):
        w = r.split()
        if k % 4 == 0 and len(w) > 2:
            w = w[:1] + w[2:]
        elif k % 4 == 1:
            w = w + w[-1:]
        elif k % 4 == 2:
            w = ["seventeen" if x.isalpha() and len(x) > 6 else x for x in w]
        hyps.append(" ".join(w) + ("" if k % 3 else " 42"))
    print(f"{len(refs)} ljspeech-mini transcripts, planted errors: uniaudio's corpus rates vs jiwer's on the same "
          "normalised text")
    for name in ("wer", "cer"):
        for norm in ("whisper-english", "seed-tts-eval"):
            m = M.get(name, normalizer=norm)
            rows = m.score([M.Sample(str(i), ref_text=r, hyp_text=h) for i, (r, h) in enumerate(zip(refs, hyps))])
            ours = m.aggregate(rows)[name]
            nr, nh = [m.normalize(r) for r in refs], [m.normalize(h) for h in hyps]
            theirs = (jiwer.wer if name == "wer" else jiwer.cer)(nr, nh)
            print(f"{name} {norm:16s} ours {ours:.6f}  jiwer {theirs:.6f}  |diff| {abs(ours - theirs):.1e}")
    # the `fleurs` preset: Whisper's notebook recipe (its normaliser on every reference and
    # transcript, then jiwer over the two lists) on FLEURS-like lines in five languages
    from whisper.normalizers import BasicTextNormalizer

    from uniaudio.benchmark.protocols import PROTOCOLS

    basic = BasicTextNormalizer()
    print(f"{len(FLEURS_PAIRS)} FLEURS-like lines (fr, de, es, zh, ja), preset fleurs vs Whisper's notebook recipe")
    for name in ("wer", "cer"):
        m = M.get(name, **PROTOCOLS["fleurs"].metric_options[name])
        rows = m.score([M.Sample(str(i), ref_text=r, hyp_text=h) for i, (r, h) in enumerate(FLEURS_PAIRS)])
        ours = m.aggregate(rows)[name]
        theirs = (jiwer.wer if name == "wer" else jiwer.cer)([basic(r) for r, _ in FLEURS_PAIRS],
                                                             [basic(h) for _, h in FLEURS_PAIRS])
        print(f"{name} fleurs           ours {ours:.6f}  notebook recipe {theirs:.6f}  |diff| {abs(ours - theirs):.1e}")


FLEURS_PAIRS = [  # (raw transcription as FLEURS ships it, an ASR's output)
    ("L'été dernier, nous sommes allés à Paris.", "l'été dernier nous sommes allé a paris"),
    ("Der Zug kommt um 8:15 Uhr an!", "der zug kommt um acht uhr fünfzehn an"),
    ("¿Dónde está la estación de tren?", "donde esta la estación del tren"),
    ("今天是2024年12月6日，天气很好。", "今天是二零二四年十二月六日天气很好"),
    ("東京は日本の首都です。", "東京は日本の首都です"),
    ("Ça coûte 20 € — trop cher !", "ça coûte vingt euros trop cher"),
]


def against_speechmos() -> None:
    from speechmos import dnsmos

    from uniaudio.benchmark import metrics as M

    clips = [c for pair in _speech_pairs() for c in pair]
    clips += [clips[0][:8000], np.concatenate([clips[1]] * 3)]  # a 0.5 s clip (repeated) and a 20 s+ one
    ours = M.get("dnsmos").score([M.Sample(str(i), hyp_audio=c) for i, c in enumerate(clips)])
    keys = {"dnsmos_ovrl": "ovrl_mos", "dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_p808": "p808_mos"}
    diffs = {k: 0.0 for k in keys}
    for c, o in zip(clips, ours):
        ref = dnsmos.run(np.clip(c, -1, 1), sr=16000)
        for k, r in keys.items():
            diffs[k] = max(diffs[k], abs(o[k] - ref[r]))
    print(f"{len(clips)} clips (ljspeech-mini clean and noisy, 0.5 s .. {max(map(len, clips)) / 16000:.0f} s): "
          "uniaudio's batched DNSMOS vs speechmos.dnsmos.run clip by clip")
    for k, d in diffs.items():
        print(f"{k:12s} max |diff| {d:.2e}")


def fadtk_functions(venv: Path) -> dict:
    """fadtk's own calc_embd_statistics and calc_frechet_distance, taken from its released wheel
    (fad.py's module top imports torch + torchaudio, which the two numpy functions do not use)."""
    import ast
    import zipfile

    venv.mkdir(parents=True, exist_ok=True)
    wheels = sorted(venv.glob("fadtk-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(venv),
                        *REFERENCE["fadtk"]], check=True)
        wheels = sorted(venv.glob("fadtk-*.whl"))
    src = zipfile.ZipFile(wheels[-1]).read("fadtk/fad.py").decode()
    wanted = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)
              and n.name in ("calc_embd_statistics", "calc_frechet_distance")]
    from numpy.lib.scimath import sqrt as scisqrt
    from scipy import linalg

    scope = {"np": np, "linalg": linalg, "scisqrt": scisqrt, "log": None}
    exec(compile(ast.Module(wanted, []), "fadtk/fad.py", "exec"), scope)
    return {"version": wheels[-1].name.split("-")[1], **{n.name: scope[n.name] for n in wanted}}


def against_fadtk(venv: Path) -> None:
    from uniaudio.benchmark import embedders
    from uniaudio.benchmark.frechet import fit, frechet_distance

    ref = fadtk_functions(venv)
    emb = embedders.get("whisper-encoder")
    pairs = _speech_pairs()
    clean = np.concatenate([emb.embed(c, 16000) for c, _ in pairs])
    noisy = [np.concatenate([emb.embed(d, 16000) for _, d in pairs[:k]]) for k in (2, 4, 8)]
    print(f"FAD of whisper-encoder frames (384-d): ljspeech-mini clean ({len(clean)} frames) vs noisy subsets; "
          f"uniaudio.frechet vs fadtk {ref['version']}")
    for n in noisy:
        ours = frechet_distance(fit(clean), fit(n))
        theirs = float(ref["calc_frechet_distance"](*ref["calc_embd_statistics"](clean),
                                                    *ref["calc_embd_statistics"](n)))
        print(f"{len(n):6d} frames  ours {ours:12.6f}  fadtk {theirs:12.6f}  rel |diff| {abs(ours - theirs) / theirs:.1e}")


def _picks(lls: list[float]) -> list[str]:
    from uniaudio.benchmark.tasks.mmlu import LETTERS

    return [LETTERS[max(range(4), key=lambda j: lls[4 * i + j])] for i in range(len(lls) // 4)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", choices=sorted(REFERENCE), required=True)
    ap.add_argument("--venv", type=Path, default=None, help="The reference's virtualenv (made if missing; "
                    "default: a new one under the system temp folder, kept for the next run)")
    ap.add_argument("--reference", type=Path, default=None, help="unispeech, seed-tts-eval: a seed-tts-eval "
                    "checkout to read UniSpeech's files / run_wer.py from; wenet-cer: a wenet checkout (its "
                    "tools/compute-cer.py); default: fetched at the pinned commit")
    args = ap.parse_args()
    venv = args.venv or Path(tempfile.gettempdir()) / f"uniaudio-fidelity-{args.against}"
    if args.against == "lm-eval":
        against_lm_eval(venv)
    elif args.against == "speechmos":
        against_speechmos()
    elif args.against == "fadtk":
        against_fadtk(venv)
    elif args.against == "unispeech":
        from fidelity_unispeech import run

        run(args.reference, venv)
    elif args.against == "seed-tts-eval":
        from fidelity_seed_text import run as run_seed_text

        run_seed_text(args.reference, venv)
    elif args.against == "wenet-cer":
        from fidelity_wenet_cer import run as run_wenet_cer

        run_wenet_cer(args.reference, venv)
    elif args.against == "torchmetrics":
        against_torchmetrics()
    else:
        against_jiwer()


if __name__ == "__main__":
    main()
