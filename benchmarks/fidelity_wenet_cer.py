"""The `aishell-cer` preset's CER vs WeNet's tools/compute-cer.py (the scorer of its AISHELL-1
recipe, run as its own script on a ref and a hyp file): per-utterance S/D/I/N on transcripts as
AISHELL and its recognisers write them (characters, the marks in compute-cer's list, spaces,
Latin letters in any case, digits, <unk> tags). Goal: the same counts on every pair. Pairs where
our rule folds more than compute-cer does (traditional characters, full-width forms, marks outside
its list) are printed apart with both values: there the two differ by design.

    python benchmarks/fidelity.py --against wenet-cer [--reference WENET_CHECKOUT]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

COMMIT = "015469960db73eb19c49a48c020d5ac9db69bae5"  # wenet-e2e/wenet, where tools/compute-cer.py was read

SAME = [  # (reference, hypothesis): the rule is the same on these
    ("甚至出现交易几乎停滞的情况", "甚至出现交易几乎停止的情况"),
    ("一二线城市虽然也处于调整中", "一二线城市也处于调整中"),
    ("但因为聚集了过多公共资源", "但是因为聚集了过多的公共资源"),
    ("为了规避三四线城市明显过剩的市场风险", ""),
    ("你好，世界！", "你好世界"),
    ("我用iPhone打电话", "我用IPHONE打电话"),
    ("他买了3本书", "他买了三本书"),
    ("重庆 火锅 很辣", "重庆火锅很辣"),
    ("今天天气很好", "今天<unk>天气很好"),
    ("这是第一句。这是第二句？", "这是第一句这是第二句"),
    ("《红楼梦》是一本书", "红楼梦是一部书"),
    ("GDP增长了百分之五", "gdp增长了百分之五"),
]
BY_DESIGN = [  # ours folds these (the card says so); compute-cer counts them
    ("他说这是真的吗", "他說這是真的嗎"),  # traditional characters in the transcript
    ("价格是30元", "价格是３０元"),  # full-width digits
    ("对了还有", "——对了……还有"),  # marks outside compute-cer's list
    ("他说我们走吧", "他说“我们走吧”"),
]


def compute_cer(checkout: Path | None, work: Path) -> Path:
    if checkout is not None:
        return checkout / "tools" / "compute-cer.py"
    import urllib.request

    dest = work / "compute-cer.py"
    if not dest.is_file():
        work.mkdir(parents=True, exist_ok=True)
        url = f"https://raw.githubusercontent.com/wenet-e2e/wenet/{COMMIT}/tools/compute-cer.py"
        dest.write_bytes(urllib.request.urlopen(url, timeout=60).read())
    return dest


def theirs(script: Path, pairs: list[tuple[str, str]]) -> list[dict]:
    """compute-cer.py --char=1 --v=1 on the pairs: its per-utterance N/S/D/I."""
    with tempfile.TemporaryDirectory() as tmp:
        ref, hyp = Path(tmp) / "ref", Path(tmp) / "hyp"
        ref.write_text("".join(f"u{k:03d} {r}\n" for k, (r, _) in enumerate(pairs)), encoding="utf-8")
        hyp.write_text("".join(f"u{k:03d} {h}\n" for k, (_, h) in enumerate(pairs)), encoding="utf-8")
        out = subprocess.run([sys.executable, str(script), "--char=1", "--v=1", str(ref), str(hyp)],
                             capture_output=True, text=True, check=True).stdout
    found = [dict(zip("NCSDI", map(int, m))) for m in re.findall(r"N=(\d+) C=(\d+) S=(\d+) D=(\d+) I=(\d+)", out)]
    if len(found) < len(pairs):
        raise RuntimeError(f"compute-cer.py printed {len(found)} utterance lines for {len(pairs)} pairs:\n"
                           f"{out[-2000:]}")
    return found[:len(pairs)]  # its last such line is the overall one


def ours(pairs: list[tuple[str, str]]) -> list[dict]:
    from uniaudio.benchmark import metrics as M
    from uniaudio.benchmark.protocols import PROTOCOLS

    cer = M.get("cer", **PROTOCOLS["aishell-cer"].metric_options["cer"])
    got = cer.score([M.Sample(f"u{k}", ref_text=r, hyp_text=h) for k, (r, h) in enumerate(pairs)])
    return [{"N": g["cer_N"], "S": g["cer_S"], "D": g["cer_D"], "I": g["cer_I"]} for g in got]


def run(checkout: Path | None, work: Path) -> None:
    script = compute_cer(checkout, work)
    worst = 0.0
    for title, pairs in (("same rule", SAME), ("differs by design", BY_DESIGN)):
        print(f"-- {title}")
        for (ref, hyp), a, b in zip(pairs, ours(pairs), theirs(script, pairs)):
            ra, rb = (a["S"] + a["D"] + a["I"]) / a["N"], (b["S"] + b["D"] + b["I"]) / b["N"]
            if title == "same rule":
                worst = max(worst, abs(ra - rb), *(abs(a[k] - b[k]) for k in "NSDI"))
            print(f"ours {ra:.4f} (N={a['N']} S={a['S']} D={a['D']} I={a['I']})  compute-cer {rb:.4f} "
                  f"(N={b['N']} S={b['S']} D={b['D']} I={b['I']})  {ref!r} / {hyp!r}")
    print(f"{len(SAME)} pairs under the same rule: largest |difference| in rate or counts {worst:.2e}")
