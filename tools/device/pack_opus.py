"""Copy the audio of codec-training manifests as 16 kHz Ogg Opus (~32 kbps; PESQ-wb ~4.5
against the FLAC sources) plus rewritten manifests, so hours of training audio fit a small
transfer (e.g. a GPU machine reached through a 64 MiB working-tree copy).

    python tools/device/pack_opus.py OUT_DIR demo-data/voices-n.parquet demo-data/x4-musiccaps.parquet ...

writes OUT_DIR/data/NAME-00000.ogg ... and OUT_DIR/NAME.parquet (paths relative to the current
directory, offset 0, duration of the copied window). A file that cannot be read is left out
and named with its reason; the others are packed."""

from __future__ import annotations

import argparse
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from uniaudio import audio, manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--level", type=float, default=0.9, help="libsndfile Opus compression level (0.9 ~ 32 kbps)")
    args = ap.parse_args()
    data = Path(args.out) / "data"
    data.mkdir(parents=True, exist_ok=True)
    for m in args.manifests:
        name = Path(m).name.removesuffix(".parquet")

        def convert(item):
            i, r = item
            try:
                wav, _ = audio.load(r.path, 16000, offset=r.offset, duration=r.duration)
            except audio.AudioError as e:
                return e
            path = data / f"{name}-{i:05d}.ogg"
            audio.save(path, wav, 16000, compression_level=args.level)
            return dataclasses.replace(r, path=str(path), offset=0.0, duration=len(wav) / 16000, sample_rate=16000,
                                       channels=1)

        with ThreadPoolExecutor(2) as pool:
            out = list(pool.map(convert, enumerate(manifest.iter_records(m))))
        recs = [r for r in out if not isinstance(r, audio.AudioError)]
        for e in out:
            if isinstance(e, audio.AudioError):
                print(f"left out: {e}")
        manifest.write_manifest(Path(args.out) / f"{name}.parquet", recs)
        print(f"{name}: {len(recs)} files, {len(out) - len(recs)} left out")


if __name__ == "__main__":
    main()
