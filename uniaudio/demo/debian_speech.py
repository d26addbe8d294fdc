"""Real recorded speech that free Debian packages ship, for codec training where no speech
corpus can be downloaded (only the package registries are reachable) and the voices of
`uniaudio data voices` are all synthetic:

- fillets-ng-data-cs, fillets-ng-data-nl, fillets-ng-data: the voiced dialogues of the game
  Fish Fillets NG (Czech, Dutch, some English), acted by several speakers, Ogg Vorbis at
  22.05/44.1 kHz; about 1.7 h + 1.5 h + 0.1 h at >= 16 kHz. GPL-2+.
- ktuberling-data: single words spoken by volunteers in 25 languages (KTuberling), WAV,
  Vorbis and Opus; about 0.5 h at >= 16 kHz. GPL-2+.
- klettres-data: letters and syllables spoken in 20 languages (KLettres), Ogg Vorbis mostly
  at 44.1 kHz; about 0.85 h. GPL-2+.

The packages are fetched with `apt-get download` (no root, nothing installed) or taken from a
folder of .deb files, unpacked with `dpkg-deb -x`, and their speech files copied to
ROOT/<source>/<language>/<file> with ROOT/manifest.jsonl (path, speaker, language), which
the folder recipe reads:
    uniaudio pipeline manifest --recipe folder --root ROOT --manifest-file manifest.jsonl --out X.parquet
Files below `min_rate` Hz (narrow-band recordings) and unreadable files are left out and
counted. Used by `uniaudio data real-speech`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import audio
from .tools import MissingTool


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    # where the speech lies inside the unpacked package: a glob, and the regex that takes the
    # language (group "lang") and optionally a prefix for the file name (group "prefix") from the path
    glob: str
    path_re: str
    licence: str = "GPL-2+"

    def match(self, rel: str) -> re.Match | None:
        return re.fullmatch(self.path_re, rel)


_FILLETS = r"usr/share/games/fillets-ng/sound/(?P<prefix>[^/]+)/(?P<lang>{lang})/[^/]+\.ogg"
SOURCES = {
    s.name: s
    for s in (
        Source("fillets-cs", "fillets-ng-data-cs", "usr/share/games/fillets-ng/sound/*/cs/*.ogg", _FILLETS.format(lang="cs")),
        Source("fillets-nl", "fillets-ng-data-nl", "usr/share/games/fillets-ng/sound/*/nl/*.ogg", _FILLETS.format(lang="nl")),
        Source("fillets-en", "fillets-ng-data", "usr/share/games/fillets-ng/sound/*/en/*.ogg", _FILLETS.format(lang="en")),
        Source("ktuberling", "ktuberling-data", "usr/share/ktuberling/sounds/*/*.*",
               r"usr/share/ktuberling/sounds/(?P<lang>[^/]+)/[^/]+\.(wav|ogg|opus)"),
        Source("klettres", "klettres-data", "usr/share/klettres/*/*/*.ogg",
               r"usr/share/klettres/(?P<lang>[^/]+)/(?P<prefix>alpha|syllab)/[^/]+\.ogg"),
    )
}


def _speaker(source: Source, lang: str, stem: str) -> str:
    """Fillets names its lines <level>-<character>-<line>: the character is the speaker
    (one actor per character and language). KTuberling, KLettres: one speaker per language."""
    if source.name.startswith("fillets"):
        parts = stem.split("-")
        return f"{source.name}-{parts[1] if len(parts) > 2 else 'x'}"
    return f"{source.name}-{lang}"


def fetch(packages: list[str], dest: Path) -> dict[str, Path]:
    """`apt-get download` each package into dest; returns package -> .deb path."""
    if shutil.which("apt-get") is None:
        raise MissingTool("apt-get is not available; download the .deb files elsewhere and pass --debs DIR")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["apt-get", "download", *packages], cwd=dest, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get download {' '.join(packages)} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-400:]} (run `apt-get update` first, or pass --debs DIR)")
    return find_debs(packages, dest)


def find_debs(packages: list[str], folder: Path) -> dict[str, Path]:
    found = {}
    for pkg in packages:
        debs = sorted(folder.glob(f"{pkg}_*.deb"))
        if not debs:
            raise FileNotFoundError(f"no {pkg}_*.deb in {folder}")
        found[pkg] = debs[-1]
    return found


def build(root: Path, sources: list[str] | None = None, debs: Path | None = None, min_rate: int = 16000) -> dict:
    """Write the speech of `sources` (default: all) under root; returns a summary
    {source: {"files", "hours", "skipped": {reason: count}}}."""
    names = list(SOURCES) if not sources else sources
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {sorted(SOURCES)}")
    if shutil.which("dpkg-deb") is None:
        raise MissingTool("dpkg-deb is not available (it comes with dpkg on Debian/Ubuntu)")
    chosen = [SOURCES[n] for n in names]
    packages = sorted({s.package for s in chosen})
    root.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="uniaudio-debs-") as tmp:
        deb_of = find_debs(packages, debs) if debs else fetch(packages, Path(tmp) / "debs")
        for src in chosen:
            unpacked = Path(tmp) / "x" / src.package
            if not unpacked.exists():
                unpacked.mkdir(parents=True)
                proc = subprocess.run(["dpkg-deb", "-x", str(deb_of[src.package]), str(unpacked)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"dpkg-deb -x {deb_of[src.package]} failed: {proc.stderr.strip()[-300:]}")
            files, seconds, skipped = 0, 0.0, {}
            for f in tqdm(sorted(unpacked.glob(src.glob)), desc=src.name, unit="file"):
                m = src.match(str(f.relative_to(unpacked)))
                if m is None:
                    continue
                try:
                    info = audio.info(f)
                except audio.AudioError as e:
                    skipped[e.reason] = skipped.get(e.reason, 0) + 1
                    continue
                if info.sample_rate < min_rate:
                    skipped[f"below_{min_rate}_hz"] = skipped.get(f"below_{min_rate}_hz", 0) + 1
                    continue
                lang = m["lang"]
                prefix = m.groupdict().get("prefix")
                name = f"{prefix}-{f.name}" if prefix else f.name
                rel = Path(src.name) / lang / name
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, root / rel)
                rows.append({"id": f"{src.name}-{lang}-{Path(name).stem}", "path": str(rel), "language": lang,
                             "speaker": _speaker(src, lang, f.stem), "duration": info.duration,
                             "sample_rate": info.sample_rate, "channels": info.channels,
                             "source_package": f"{src.package} ({deb_of[src.package].name})", "licence": src.licence})
                files += 1
                seconds += info.duration
            summary[src.name] = {"files": files, "hours": round(seconds / 3600, 3), "skipped": skipped}
    with open(root / "manifest.jsonl", "w", encoding="utf-8") as out:
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    (root / "sources.json").write_text(json.dumps(summary, indent=2))
    return summary
