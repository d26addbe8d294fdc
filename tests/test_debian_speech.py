"""`uniaudio data real-speech` on .deb files built here with dpkg-deb (the real package format,
a few short files instead of the 40-70 MB packages)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from uniaudio import audio, manifest
from uniaudio.cli import main
from uniaudio.demo import debian_speech
from uniaudio.pipeline.recipes import records

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _deb(out: Path, package: str, files: dict[str, bytes | tuple[np.ndarray, int]]) -> None:
    tree = out / f"tree-{package}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n")
    for rel, content in files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            wav, sr = content
            audio.save(p, wav, sr, subtype="VORBIS" if p.suffix == ".ogg" else None)
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(out / f"{package}_1.0_all.deb")],
                   check=True, capture_output=True)


def _tone(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


@pytest.fixture()
def debs(tmp_path: Path) -> Path:
    d = tmp_path / "debs"
    d.mkdir()
    fillets = "usr/share/games/fillets-ng/sound"
    _deb(d, "fillets-ng-data-cs", {
        f"{fillets}/city/cs/vit-m-hlava.ogg": (_tone(1.5, 22050), 22050),
        f"{fillets}/city/cs/vit-v-proc.ogg": (_tone(2.0, 44100), 44100),
        f"{fillets}/share/splash.ogg": (_tone(0.5, 22050), 22050),  # a sound effect: not speech, not taken
    })
    _deb(d, "ktuberling-data", {
        "usr/share/ktuberling/sounds/fr/nez.wav": (_tone(0.8, 22050), 22050),
        "usr/share/ktuberling/sounds/fr/oeil.ogg": (_tone(0.7, 48000), 48000),
        "usr/share/ktuberling/sounds/fr/ktuberling.soundtheme": b"[theme]\n",  # not audio: not taken
        "usr/share/ktuberling/sounds/de/nase.wav": (_tone(0.8, 8000), 8000),  # narrow band: left out
        "usr/share/ktuberling/sounds/en/nose.wav": b"RIFF\x00\x00garbage",  # unreadable: left out, counted
    })
    _deb(d, "klettres-data", {"usr/share/klettres/en/syllab/ba.ogg": (_tone(1.0, 44100), 44100)})
    return d


def test_build_takes_speech_and_counts_what_it_leaves(debs: Path, tmp_path: Path):
    root = tmp_path / "real"
    summary = debian_speech.build(root, ["fillets-cs", "ktuberling", "klettres"], debs=debs)
    assert summary["fillets-cs"]["files"] == 2 and summary["fillets-cs"]["skipped"] == {}
    assert summary["ktuberling"]["files"] == 2
    assert summary["ktuberling"]["skipped"] == {"below_16000_hz": 1, audio.UNREADABLE: 1}
    assert summary["fillets-cs"]["hours"] == pytest.approx(3.5 / 3600, abs=1e-4)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    assert {r["path"] for r in rows} == {"fillets-cs/cs/city-vit-m-hlava.ogg", "fillets-cs/cs/city-vit-v-proc.ogg",
                                          "ktuberling/fr/nez.wav", "ktuberling/fr/oeil.ogg",
                                          "klettres/en/syllab-ba.ogg"}
    by_path = {r["path"]: r for r in rows}
    assert by_path["fillets-cs/cs/city-vit-m-hlava.ogg"]["speaker"] == "fillets-cs-m"
    assert by_path["fillets-cs/cs/city-vit-v-proc.ogg"]["speaker"] == "fillets-cs-v"
    assert by_path["ktuberling/fr/nez.wav"]["speaker"] == "ktuberling-fr"
    assert by_path["klettres/en/syllab-ba.ogg"]["speaker"] == "klettres-en"

    # the folder recipe reads it into valid records whose audio loads at the model rate
    recs = list(records("folder", root, manifest="manifest.jsonl", corpus="real-speech"))
    assert len(recs) == 5
    for r in recs:
        assert manifest.problems(r) == []
        assert r.domain == "speech" and r.language in ("cs", "fr", "en")
        assert r.extra["licence"] == "GPL-2+" and r.extra["source_package"].startswith(("fillets-ng-data-cs", "ktuberling", "klettres"))
        wav, sr = audio.load(r.path, 16000)
        assert sr == 16000 and abs(len(wav) / sr - r.duration) < 0.01


def test_cli_and_clear_errors(debs: Path, tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(main, ["data", "real-speech", str(tmp_path / "r"), "--source", "fillets-cs", "--debs", str(debs)])
    assert res.exit_code == 0, res.output
    assert '"files": 2' in res.output and "--manifest-file manifest.jsonl" in res.output
    res = runner.invoke(main, ["data", "real-speech", str(tmp_path / "r2"), "--source", "librivox", "--debs", str(debs)])
    assert res.exit_code != 0 and "unknown source(s) ['librivox']" in res.output
    res = runner.invoke(main, ["data", "real-speech", str(tmp_path / "r3"), "--source", "fillets-nl", "--debs", str(debs)])
    assert res.exit_code != 0 and "no fillets-ng-data-nl_*.deb" in res.output
    (debs / "fillets-ng-data-nl_1.0_all.deb").write_bytes(b"!<arch>\ntruncated")
    res = runner.invoke(main, ["data", "real-speech", str(tmp_path / "r4"), "--source", "fillets-nl", "--debs", str(debs)])
    assert res.exit_code != 0 and "dpkg-deb -x" in res.output and "failed" in res.output
