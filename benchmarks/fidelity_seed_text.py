"""Seed-TTS-eval's text rule vs ours: run_wer.py's own `process_one` (read from a seed-tts-eval
checkout, or fetched at the pinned commit; its top-level ASR code is not run) and our `wer`
metric with `normalizer=seed-tts-eval` (+ zhconv on the transcript for zh), on tricky strings:
numbers, Chinese and ASCII punctuation, traditional characters, full-width forms, apostrophes,
double spaces. Goal: the same per-utterance rate on every pair.

    python benchmarks/fidelity.py --against seed-tts-eval [--reference CHECKOUT]
"""

from __future__ import annotations

import ast
from pathlib import Path

from fidelity_unispeech import COMMIT

# (language, reference text, transcript): what a zh / en TTS output's ASR may give back
PAIRS = [
    ("zh", "今天是2024年12月6日，天气很好！", "今天是2024年12月6日天氣很好"),
    ("zh", "你好，世界。", "你好世界"),
    ("zh", "“我们走吧，”他说。", "我們走吧他說"),
    ("zh", "价格是３０元（含税）。", "价格是30元含税"),
    ("zh", "ＡＢＣ公司的Ｃ＋＋代码", "ABC公司的C++代码"),
    ("zh", "一九九八年，他来到北京", "1998年他来到北京"),
    ("zh", "他說：「這是真的嗎？」", "他说这是真的吗"),
    ("zh", "重庆 火锅  很辣", "重庆火锅很辣"),
    ("zh", "这是第一句。这是第二句！", "这是第一句这是第二句"),
    ("zh", "——对了……还有", "对了还有"),
    ("en", "Don't stop — it's 5 o'clock!", "dont stop its five oclock"),
    ("en", "Mr. Smith paid $20.50, right?", "mister smith paid twenty dollars fifty right"),
    ("en", "Hello,   world", "hello world"),
    ("en", "THE END.", "the end"),
    ("en", "A well-known fact: 100%.", "a well known fact 100"),
]


def process_one(checkout: Path | None, work: Path):
    """run_wer.py's `process_one` and its punctuation set, without the rest of the script."""
    if checkout is not None:
        src = (checkout / "run_wer.py").read_text()
    else:
        import urllib.request

        work.mkdir(parents=True, exist_ok=True)
        dest = work / "run_wer.py"
        if not dest.is_file():
            url = f"https://raw.githubusercontent.com/BytedanceSpeech/seed-tts-eval/{COMMIT}/run_wer.py"
            dest.write_bytes(urllib.request.urlopen(url, timeout=60).read())
        src = dest.read_text()
    tree = ast.parse(src)
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "process_one"]
    # jiwer 4 dropped compute_measures (run_wer.py's call): the same counts from process_words,
    # whose default transform (collapse spaces, strip, split on whitespace) is the one it applied
    setup = ("import string\nimport jiwer\nfrom zhon.hanzi import punctuation\n"
             "punctuation_all = punctuation + string.punctuation\n"
             "def compute_measures(truth, hypo):\n"
             "    o = jiwer.process_words(truth, hypo)\n"
             "    return {'wer': o.wer, 'substitutions': o.substitutions, 'deletions': o.deletions,\n"
             "            'insertions': o.insertions}\n")
    env: dict = {}
    exec(compile(setup, "setup", "exec"), env)  # noqa: S102 - the reference's own function, read from its file
    exec(compile(ast.Module(keep, []), "run_wer.py", "exec"), env)  # noqa: S102
    return env


def run(checkout: Path | None, work: Path) -> None:
    import zhconv

    from uniaudio.benchmark.metrics.base import Sample
    from uniaudio.benchmark.metrics.wer import WER

    env = process_one(checkout, work)
    worst = 0.0
    for lang, ref, hyp in PAIRS:
        env["lang"] = lang  # run_wer.py's global
        theirs = env["process_one"](zhconv.convert(hyp, "zh-cn") if lang == "zh" else hyp, ref)[2]
        ours = WER(normalizer="seed-tts-eval", language=lang).score([Sample(id="x", ref_text=ref, hyp_text=hyp)])[0]
        worst = max(worst, abs(ours["wer"] - theirs))
        print(f"{lang}  ours {ours['wer']:.4f}  theirs {theirs:.4f}  {ref!r} / {hyp!r}")
    print(f"{len(PAIRS)} pairs: largest |difference| {worst:.2e}")
