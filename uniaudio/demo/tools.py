"""External programs the demo needs, found once, with an install hint when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

APT_HINT = "sudo apt-get install -y espeak-ng sox fluidsynth fluid-soundfont-gm (or run ./run.sh demo, which installs them)"

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


class MissingTool(RuntimeError):
    pass


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise MissingTool(f"'{program}' is not on PATH; install it: {APT_HINT}")
    return path


@lru_cache(maxsize=None)
def soundfont() -> str:
    env = os.environ.get("UNIAUDIO_SOUNDFONT")
    if env:
        if not Path(env).is_file():
            raise MissingTool(f"UNIAUDIO_SOUNDFONT={env} does not exist")
        return env
    for c in SOUNDFONT_CANDIDATES:
        if Path(c).is_file():
            return c
    raise MissingTool(f"no General MIDI soundfont found in {SOUNDFONT_CANDIDATES}; set UNIAUDIO_SOUNDFONT or {APT_HINT}")


def version(program: str) -> str:
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def run(cmd: list[str]) -> None:
    """Run a tool; on failure raise with its stderr so the user sees why."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")


def espeak(text: str, voice: str = "en-us", *, pitch: int | None = None, rate: int | None = None,
           sample_rate: int = 16000):
    """Speech from espeak-ng (voice, -p pitch 0-99, -s words per minute) as float32 mono at
    `sample_rate`, read through uniaudio.audio."""
    import tempfile

    from .. import audio

    args = [require("espeak-ng"), "-v", voice]
    if pitch is not None:
        args += ["-p", str(pitch)]
    if rate is not None:
        args += ["-s", str(rate)]
    with tempfile.TemporaryDirectory() as tmp:
        run(args + ["-w", f"{tmp}/x.wav", text])
        return audio.load(f"{tmp}/x.wav", sample_rate)
