#!/usr/bin/env bash
# uniaudio's two commands, each installing what it needs first (a no-op when set up):
#   ./run.sh demo [DIR]     demo corpora -> token shards -> auditory sentences -> verify -> benchmark run --task all,
#                           then the Mandarin demo-zh suite (local Ray)
#   ./run.sh test [ARGS]    the test suite (ARGS go to pytest, e.g. -m "not slow")
#   ./run.sh setup          only install
# Environment: UNIAUDIO_VENV (default .venv), UNIAUDIO_TORCH_INDEX (a PyTorch wheel index
# URL for a CUDA or CPU build), UNIAUDIO_SKIP_APT=1 (system packages handled by you).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${UNIAUDIO_VENV:-.venv}
APT_PKGS=(espeak-ng sox libsox-fmt-all fluidsynth fluid-soundfont-gm libsndfile1 codec2 flite festival festvox-us-slt-hts
          festvox-kallpc16k festvox-kdlpc16k festvox-ru festvox-czech-dita festvox-czech-machac festvox-czech-krb
          festvox-suopuhe-lj festvox-suopuhe-mv chromium chromium-driver)

log() { printf '\033[1m[uniaudio]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; exit 1; fi
}

setup_system() {
  [ "${UNIAUDIO_SKIP_APT:-0}" = 1 ] && return
  local missing=()
  for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  command -v java >/dev/null || missing+=(default-jre-headless)  # the COCO caption metrics' PTB tokenizer
  command -v g++ >/dev/null || missing+=(g++)  # pyworld and pysptk build from source (svs, speech_edit metrics)
  command -v python3 >/dev/null || missing+=(python3 python3-venv python3-pip)
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return
  if ! command -v apt-get >/dev/null; then
    log "not a Debian/Ubuntu system: install ${missing[*]} with your package manager, then set UNIAUDIO_SKIP_APT=1"; exit 1
  fi
  log "installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_python() {
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { log "uniaudio needs Python >= 3.11"; exit 1; }
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  local py="$VENV/bin/python"
  if ! "$py" -c 'import torch' 2>/dev/null; then
    # torch==2.13.0 takes a local CPU wheel where a find-links folder has one; elsewhere set
    # UNIAUDIO_TORCH_INDEX to the wheel index PyTorch's install page gives (CPU or CUDA).
    log "installing torch 2.13.0"
    if [ -n "${UNIAUDIO_TORCH_INDEX:-}" ]; then
      "$py" -m pip install -q "torch==2.13.0" --index-url "$UNIAUDIO_TORCH_INDEX"
    else
      "$py" -m pip install -q "torch==2.13.0"
    fi
  fi
  local stamp="$VENV/.uniaudio-install" want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing uniaudio and its dependencies into $VENV"
    "$py" -m pip install -q -e ".[bench,dev]"
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup_system; setup_python ;;
  demo)
    setup_system; setup_python
    dir=${1:-demo-data}
    [ -f "$dir/corpora/demo.json" ] || "$VENV/bin/uniaudio" data demo "$dir/corpora"
    log "demo corpora in $dir/corpora (see $dir/corpora/demo.json)"
    "$VENV/bin/uniaudio" pipeline run configs/demo-pipeline.yaml --out "$dir/shards" \
      --input "librispeech:$dir/corpora/LibriSpeech" --input "audiocaps:$dir/corpora/audiocaps" \
      --input "musiccaps:$dir/corpora/musiccaps" --input "aishell:$dir/corpora/aishell"
    "$VENV/bin/uniaudio" pipeline verify "$dir/shards"
    log "shards in $dir/shards (report.json, index.parquet, rejects.parquet)"
    "$VENV/bin/uniaudio" pipeline sentences configs/demo-sentences.yaml --shards "$dir/shards" --out "$dir/sentences"
    "$VENV/bin/uniaudio" pipeline verify "$dir/sentences"
    log "auditory-sentence bundles in $dir/sentences (see: uniaudio pipeline inspect $dir/sentences/shards/sentences-000000.tar)"
    # The demo needs nothing from the network: metrics whose weights are not here report NaN
    # with the command that fetches them instead of waiting on hub retries. The demo suite is
    # built once in the benchmark data root (~/.cache/uniaudio/benchmark, or
    # $UNIAUDIO_BENCHMARK_DATA), where later `benchmark run` commands find it; --resume: a
    # second demo scores only what is new (outputs made for another test set are redone).
    HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} "$VENV/bin/benchmark" run --task all --out "$dir/benchmark-results" --resume
    log "benchmark results in $dir/benchmark-results/results/{task}/{system}/"
    log "leaderboards: open $dir/benchmark-results/leaderboards/index.html"
    # the demo's second language: its held-out Mandarin speaker, asr and tts (results of their own)
    HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} "$VENV/bin/benchmark" run --suite demo-zh --out "$dir/benchmark-results-zh" --resume
    log "Mandarin: open $dir/benchmark-results-zh/leaderboards/index.html (tts CER needs a zh ASR: see docs/languages.md)"
    ;;
  test)
    setup_system; setup_python
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
