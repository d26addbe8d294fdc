"""Every shipped config loads and validates through its typed dataclass."""

from pathlib import Path

import pytest

from uniaudio.config import load

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_is_valid(path):
    if path.name.startswith("codec"):
        from uniaudio.train.codec_trainer import CodecTrainConfig as cls
    elif "sentences" in path.name:
        from uniaudio.pipeline.sentences import SentenceConfig as cls
    elif path.name.startswith("lm-"):
        from uniaudio.train.lm import LMTrainConfig as cls
    elif path.name.startswith("factorized"):
        from uniaudio.train.factorized_trainer import FactorizedTrainConfig as cls
    else:
        from uniaudio.pipeline.config import PipelineConfig as cls
    cfg = load(cls, path)
    if hasattr(cfg, "validate"):
        cfg.validate()


def test_there_are_configs():
    assert {"demo-pipeline.yaml", "demo-sentences.yaml", "codec-demo.yaml", "codec-16k.yaml"} <= {p.name for p in CONFIGS}
