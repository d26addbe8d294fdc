"""`benchmarks/fidelity.py --against unispeech`: Seed-TTS-eval's SIM model, ours vs UniSpeech's code.

UniSpeech's WavLM (`WavLM/WavLM.py`, `modules.py`) and ECAPA-TDNN
(`downstreams/speaker_verification/models/ecapa_tdnn.py`) are plain torch files, not a package:
they are read from a seed-tts-eval checkout (`--reference DIR`) or fetched from GitHub at the
pinned commit. The reference gets its WavLM features the way s3prl's upstream does (hooks on the
input of every transformer layer and on the encoder's output; wave layer-normalised), here by an
adapter written to that rule since s3prl itself comes through torch.hub. A tiny random WavLM with
every WavLM-large option on (layer-norm extractor, conv bias, pre-LN, gated relative position
bias) + the reference's full-size ECAPA head is saved as the checkpoint would be, loaded by
uniaudio's `sim.backend=wavlm-large-ecapa` through the same mapping as the published file, and
both score real speech: the largest embedding and cosine differences are printed."""

from __future__ import annotations

import sys
import types
import urllib.request
from pathlib import Path

COMMIT = "752f4297f090c46bb1a55a1f7439e5944ddefe8d"  # BytedanceSpeech/seed-tts-eval
FILES = {"WavLM.py": "thirdparty/UniSpeech/WavLM/WavLM.py",
         "modules.py": "thirdparty/UniSpeech/WavLM/modules.py",
         "ecapa_tdnn.py": "thirdparty/UniSpeech/downstreams/speaker_verification/models/ecapa_tdnn.py"}
# tiny WavLM, every option of WavLM-large on (UniSpeech cfg names, then the transformers names)
TINY = dict(extractor_mode="layer_norm", encoder_layers=3, encoder_embed_dim=64, encoder_ffn_embed_dim=128,
            encoder_attention_heads=4, layer_norm_first=True, conv_bias=True, normalize=True,
            conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2", conv_pos=16, conv_pos_groups=4,
            relative_position_embedding=True, num_buckets=32, max_distance=100, gru_rel_pos=True,
            dropout=0.0, attention_dropout=0.0)
TINY_HF = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
               feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True, num_buckets=32,
               max_bucket_distance=100, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
               conv_dim=(32,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2))


def reference_files(dest: Path, checkout: Path | None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name, rel in FILES.items():
        if checkout is not None:
            (dest / name).write_bytes((checkout / rel).read_bytes())
        elif not (dest / name).exists():
            url = f"https://raw.githubusercontent.com/BytedanceSpeech/seed-tts-eval/{COMMIT}/{rel}"
            urllib.request.urlretrieve(url, dest / name)
    return dest


def reference_model(src: Path):
    """UniSpeech's ECAPA_TDNN_SMALL(feat_type='wavlm_large') around a tiny reference WavLM."""
    import torch

    sys.path.insert(0, str(src))
    stub = "torchaudio" not in sys.modules  # ecapa_tdnn imports it for its fbank front end, unused here
    if stub:
        ta = types.ModuleType("torchaudio")
        ta.transforms = types.ModuleType("torchaudio.transforms")
        sys.modules["torchaudio"], sys.modules["torchaudio.transforms"] = ta, ta.transforms
    import ecapa_tdnn
    if stub:  # gone again before transformers looks for the real package
        del sys.modules["torchaudio"], sys.modules["torchaudio.transforms"]
    from WavLM import WavLM, WavLMConfig

    class S3prlLikeUpstream(torch.nn.Module):
        """s3prl's WavLM upstream, as UniSpeech's models/utils.py UpstreamExpert defines it:
        `hidden_states` = the input of each encoder layer + the encoder's output."""

        def __init__(self, _config_path):
            super().__init__()
            self.model = WavLM(WavLMConfig(TINY))
            self._taps = []
            for layer in self.model.encoder.layers:
                layer.register_forward_hook(lambda m, i, o: self._taps.append(i[0].transpose(0, 1)))
            self.model.encoder.register_forward_hook(lambda m, i, o: self._taps.append(o[0]))

        def forward(self, wavs):
            wavs = [torch.nn.functional.layer_norm(w, w.shape) for w in wavs]  # cfg.normalize
            self._taps = []
            self.model.extract_features(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), padding_mask=None)
            return {"hidden_states": list(self._taps)}

    ecapa_tdnn.UpstreamExpert = S3prlLikeUpstream
    torch.manual_seed(0)
    model = ecapa_tdnn.ECAPA_TDNN_SMALL(feat_dim=64, feat_type="wavlm_large", config_path="tiny")
    with torch.no_grad():  # trained-looking statistics and layer weights, not the init's zeros/ones
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        model.feature_weight.normal_(0, 1)
        for p in model.feature_extract.model.parameters():
            if p.dim() == 1 or p.shape[-1] == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def run(checkout: Path | None, work: Path) -> None:
    import numpy as np
    import torch

    from uniaudio import audio
    from uniaudio.benchmark.metrics.speaker import _WavLMLargeEcapa
    from uniaudio.benchmark.suites import find_ljspeech_mini

    ref = reference_model(reference_files(work / "unispeech", checkout))
    ckpt = work / "wavlm_large_finetune.pth"
    # the published file's layout: {"model": the ECAPA's state dict}, WavLM under feature_extract.model.
    torch.save({"model": ref.state_dict(), "wavlm_config": TINY_HF}, ckpt)
    ours = _WavLMLargeEcapa(str(ckpt))
    wavs = [audio.load(f, 16000)[0] for f in sorted((find_ljspeech_mini() / "wavs").glob("*.wav"))[:6]]
    t = np.arange(32000) / 16000  # and two non-speech clips, so that the random model's SIM spreads
    wavs += [np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1,
             (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.25)).astype(np.float32)]
    with torch.no_grad():
        theirs = [ref(torch.from_numpy(w)[None])[0].double().numpy() for w in wavs]
    mine = ours.embed(wavs)
    emb = max(float(np.abs(a - b).max()) for a, b in zip(mine, theirs))

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    sims = [(cos(mine[0], mine[k]), cos(theirs[0], theirs[k])) for k in range(1, len(wavs))]
    print(f"{len(wavs) - 2} ljspeech-mini utterances + noise + a gated tone; tiny WavLM ({TINY['encoder_layers']} layers, every WavLM-large "
          f"option) + full ECAPA head; ignored checkpoint entries: {ours.ignored or 'none'}")
    print(f"embedding max |diff| {emb:.2e}  (values up to {max(float(np.abs(t).max()) for t in theirs):.2f})")
    print(f"SIM       max |diff| {max(abs(a - b) for a, b in sims):.2e}  (SIM values "
          f"{min(a for a, _ in sims):.3f} .. {max(a for a, _ in sims):.3f})")
