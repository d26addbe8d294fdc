"""Deterministic demo corpora in the real on-disk layouts the recipes read.

`build_demo(root)` writes:
  root/LibriSpeech/{train-clean-100,test-clean}/SPK/CHAP/SPK-CHAP-UTT.flac + SPK-CHAP.trans.txt
  root/audiocaps/{train,val,test}.csv + audio/{split}/{youtube_id}.wav
  root/musiccaps/musiccaps-public.csv + audio/{ytid}.wav
  root/demo.json (seed, scale, counts, tool versions)
Speech comes from espeak-ng, sound events from numpy synthesis, music from fluidsynth
rendering generated MIDI. The same seed and scale give the same files.
"""

from .build import build_demo

__all__ = ["build_demo"]
