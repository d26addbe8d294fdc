"""Training data the data engine derives (issue 41): simulated pairs (noisy, reverberant and
two-speaker speech, sound edits) recorded per item, rendered identically on a rerun, held-out kept
apart, every item that cannot be made rejected with its reason; and per-item prosody measures
(instruct_tts instructions). FLAC shards here, so the audio can be checked against what each row
records; the tokenized line is covered by the sentence tests."""

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pipeline_helpers import config, plan_rows, rejects, tar_state
from uniaudio import mixing
from uniaudio.config import ConfigError, from_dict
from uniaudio.pipeline.config import PipelineConfig
from uniaudio.pipeline.run import run
from uniaudio.pipeline.shards import read_tar

SIMULATE = {"seed": 3, "se": {"snr_db": [0, 10]}, "dereverb": {"rt60": [0.3, 0.8]}, "tse": {"sir_db": [-3, 3]},
            "sound_edit": {"event_ratio_db": [-2, 2]}}


def inputs(root, sounds=True):
    out = [{"recipe": "librispeech", "root": str(root / "LibriSpeech")}]
    return out + ([{"recipe": "audiocaps", "root": str(root / "audiocaps")}] if sounds else [])


def flac_audio(out) -> dict[str, np.ndarray]:
    wavs = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        for _, m in read_tar(tar):
            wavs[json.loads(m["json"])["id"]] = sf.read(io.BytesIO(m["flac"]), dtype="float64")[0]
    return wavs


@pytest.mark.slow
def test_pairs_are_what_each_row_records_and_a_rerun_makes_the_same_bytes(tmp_path, demo_root, ray_local):
    out = tmp_path / "out"
    report = run(config(out, inputs(demo_root), simulate=SIMULATE), progress=False)
    summary = json.loads((out / "manifests" / "simulated.json").read_text())
    rows, wavs = plan_rows(out), flac_audio(out)
    speech = [r for r in rows.values() if r["domain"] == "speech" and "sim_task" not in r["extra"]]
    clips = [r for r in rows.values() if r["domain"] == "sound" and "sim_task" not in r["extra"]]
    derived = [r for r in rows.values() if "sim_task" in r["extra"]]
    assert len(derived) == 3 * len(speech) + len(clips) and {t: c["pairs"] for t, c in summary["tasks"].items()} == \
        {"se": len(speech), "dereverb": len(speech), "tse": len(speech), "sound_edit": len(clips)}
    assert report["rejected"] == 0 and all(r["id"] in wavs for r in derived)

    held = lambda r: r["split"].startswith(("test", "dev", "val", "eval"))  # noqa: E731
    measured = 0
    for d in derived:
        e, clean = d["extra"], wavs[d["extra"]["sim_target"]]
        target = rows[e["sim_target"]]
        assert (d["speaker"], d["split"], d["corpus"]) == (target["speaker"], target["split"], target["corpus"])
        got = wavs[d["id"]]
        assert len(got) == len(clean)
        if e["sim_task"] == "dereverb":  # the room model of the benchmark's test set, from the recorded seed
            want, _ = mixing.reverberate(clean.astype(np.float32), e["rt60"], 16000, e["sim_seed"])
            assert np.abs(got - want).max() < 2e-4 and 0.3 <= e["rt60"] <= 0.8
            continue
        other = rows[e[{"se": "noise_id", "tse": "interferer_id", "sound_edit": "event_id"}[e["sim_task"]]]]
        assert held(other) == held(target)  # a pair never joins a held-out and a training item
        if e["sim_task"] == "se":
            assert other["domain"] == "sound" and 0 <= e["snr_db"] <= 10
        elif e["sim_task"] == "sound_edit":  # another captioned clip, named by its caption
            assert other["id"] != target["id"] and e["event_caption"] == other["caption"].strip()
            assert d["domain"] == "sound" and -2 <= e["event_ratio_db"] <= 2
        else:
            assert other["domain"] == "speech" and other["speaker"] != target["speaker"] and -3 <= e["sir_db"] <= 3
        if np.abs(got).max() < 0.98:  # not peak-limited: the added part is got - clean, at the drawn ratio
            added = got - clean
            ratio = 10 * np.log10(np.mean(clean**2) / np.mean(added**2))
            want = e[{"se": "snr_db", "tse": "sir_db", "sound_edit": "event_ratio_db"}[e["sim_task"]]]
            assert ratio == pytest.approx(want, abs=0.1)
            measured += 1
    assert measured > len(speech)  # most mixtures are checked (the peak-limited ones cannot be)

    again = tmp_path / "again"  # a fresh output from the same config: the same pair bytes
    run(config(again, inputs(demo_root), simulate=SIMULATE), progress=False)
    first = {k: v[1] for k, v in tar_state(out).items() if k.startswith("simulated")}
    assert first and first == {k: v[1] for k, v in tar_state(again).items() if k.startswith("simulated")}


def test_items_that_cannot_be_paired_are_rejected_with_their_reason(tmp_path, demo_root, ray_local):
    """Noise only in the held-out split: training speech has no noise source. Each such item is a
    reject with the reason, counted; the held-out items are paired; the run goes on."""
    from uniaudio import manifest

    src = list(manifest.iter_records(_manifest(tmp_path, demo_root, "audiocaps")))
    noise = tmp_path / "noise.parquet"
    manifest.write_manifest(noise, [r for r in src if r.split.startswith("val")][:2])
    out = tmp_path / "out"
    report = run(config(out, [{"recipe": "librispeech", "root": str(demo_root / "LibriSpeech")},
                              {"manifest": str(noise), "name": "noise"}],
                        simulate={"se": {}}, shard={"max_samples": 16}), progress=False)
    why = rejects(out)
    rows = plan_rows(out)
    train_pairs = [i for i, r in rows.items() if "sim_task" in r["extra"] and not r["split"].startswith("test")]
    assert train_pairs and all(why[i] == "no_noise_source" for i in train_pairs)
    assert report["rejects_by_reason"]["no_noise_source"] == len(train_pairs)
    held_pairs = [i for i, r in rows.items() if "sim_task" in r["extra"] and r["split"].startswith("test")]
    assert held_pairs and not set(held_pairs) & set(why)
    summary = json.loads((out / "manifests" / "simulated.json").read_text())
    assert summary["tasks"]["se"] == {"pairs": len(held_pairs), "unpaired": len(train_pairs)}


def _manifest(tmp_path, demo_root, recipe) -> str:
    """The recipe's manifest of the demo corpus (written once per test)."""
    from uniaudio import manifest
    from uniaudio.pipeline.recipes import records

    path = tmp_path / f"{recipe}.parquet"
    if not path.exists():
        folder = {"librispeech": "LibriSpeech"}.get(recipe, recipe)
        manifest.write_manifest(path, records(recipe, demo_root / folder))
    return str(path)


def test_a_config_that_cannot_pair_fails_before_any_work_naming_the_field(tmp_path, demo_root):
    with pytest.raises(ConfigError, match=r"simulate\.se\.snr_db.*empty range"):
        from_dict(PipelineConfig, {"inputs": inputs(demo_root), "output": str(tmp_path / "o"),
                                   "simulate": {"se": {"snr_db": [10, 0]}}})
    with pytest.raises(ConfigError, match=r"'simulate': enable at least one"):
        from_dict(PipelineConfig, {"inputs": inputs(demo_root), "output": str(tmp_path / "o"), "simulate": {}})
    with pytest.raises(ConfigError, match=r"inputs\[\]\.name'.*'simulated'"):
        from_dict(PipelineConfig, {"inputs": [dict(inputs(demo_root)[0], name="simulated")],
                                   "output": str(tmp_path / "o"), "simulate": {"dereverb": {}}})
    out = tmp_path / "nosound"
    with pytest.raises(ConfigError, match=r"simulate\.se\.noise_domains.*no input row of domain sound/music"):
        run(config(out, inputs(demo_root, sounds=False), simulate={"se": {}}), progress=False)
    assert not list((out / "shards").glob("*.tar"))  # nothing was written
    one = tmp_path / "one-speaker.parquet"
    from uniaudio import manifest

    speech = list(manifest.iter_records(_manifest(tmp_path, demo_root, "librispeech")))
    manifest.write_manifest(one, [r for r in speech if r.speaker == speech[0].speaker])
    with pytest.raises(ConfigError, match=r"simulate\.tse.*at least two speakers"):
        run(config(tmp_path / "tse", [{"manifest": str(one)}], simulate={"tse": {}}), progress=False)


def test_weights_draw_about_that_many_pairs(tmp_path, demo_root):
    from uniaudio import manifest
    from uniaudio.pipeline import simulate

    spec = from_dict(simulate.SimulateSpec, {"dereverb": {"per_item": 0.5}, "se": {"per_item": 2}})
    path, summary = simulate.build(spec, [_manifest(tmp_path, demo_root, "librispeech"),
                                          _manifest(tmp_path, demo_root, "audiocaps")], str(tmp_path))
    n = sum(1 for r in manifest.iter_records(_manifest(tmp_path, demo_root, "librispeech")))
    assert summary["tasks"]["se"]["pairs"] == 2 * n and 0.2 * n < summary["tasks"]["dereverb"]["pairs"] < 0.8 * n
    ids = [r.id for r in manifest.iter_records(path)]
    assert len(ids) == len(set(ids)) and simulate.build(spec, [], str(tmp_path))[1] == summary  # read back
    wav = np.zeros(16000, np.float32)
    with pytest.raises(simulate.SimulationError, match="^noise-x: ") as e:  # a source gone since planning
        simulate.render({"sim_task": "se", "sim_seed": 1, "noise_id": "noise-x", "noise_path": str(tmp_path / "none.wav"),
                         "snr_db": 0.0}, wav, 16000)
    assert e.value.reason == "noise_unreadable"


def test_a_run_with_pairs_resumes_and_a_changed_simulation_is_refused(tmp_path, demo_root, ray_local):
    """Resume sees the simulated input as part of the run (it is planned like the corpora); the
    same output with other simulation settings, or without them, is refused naming the field."""
    from uniaudio.pipeline.plan import PlanMismatch

    out = tmp_path / "out"
    sim = {"dereverb": {"per_item": 0.5}}
    run(config(out, inputs(demo_root, sounds=False), simulate=sim), progress=False)
    before = tar_state(out)
    again = run(config(out, inputs(demo_root, sounds=False), simulate=sim), progress=False)
    assert again["shards"]["written_this_run"] == 0 and tar_state(out) == before
    with pytest.raises(PlanMismatch, match=r"simulate\.dereverb\.rt60"):
        run(config(out, inputs(demo_root, sounds=False), simulate={"dereverb": {"per_item": 0.5, "rt60": [0.2, 0.4]}}),
            progress=False)
    with pytest.raises(PlanMismatch, match="simulate"):
        run(config(out, inputs(demo_root, sounds=False)), progress=False)


def test_prosody_measures_land_in_the_samples_and_the_index(tmp_path, demo_root, ray_local):
    """`measure: [prosody]`: every speech item's F0, speech seconds, words/s and their bands in its
    sample JSON and in index.parquet (the same numbers uniaudio.prosody gives on the decoded audio);
    the measured output resumes, and the same output without the measure is refused naming it."""
    from uniaudio import prosody
    from uniaudio.pipeline.plan import PlanMismatch

    out = tmp_path / "out"
    cfg = config(out, inputs(demo_root, sounds=False), measure=["prosody"], shard={"max_samples": 16})
    run(cfg, progress=False)
    index = pq.read_table(out / "index.parquet").to_pylist()
    rows, wavs = plan_rows(out), flac_audio(out)
    assert index and all(r["measures"] for r in index)
    for r in index[:6]:
        m = json.loads(r["measures"])
        f0 = prosody.median_f0(wavs[r["id"]].astype(np.float32), 16000)
        assert m["f0_hz"] == pytest.approx(f0, rel=0.02) and m["pitch"] == prosody.band("pitch", m["f0_hz"])
        words = len(rows[r["id"]]["text"].split())
        assert m["words_per_s"] == pytest.approx(words / m["speech_s"], rel=1e-3) and m["rate"] in prosody.RATE_BANDS_WPS
    sample = next(json.loads(mm["json"]) for t in sorted((out / "shards").glob("*.tar")) for _, mm in read_tar(t))
    assert sample["measures"] == json.loads(next(r for r in index if r["id"] == sample["id"])["measures"])
    assert run(cfg, progress=False)["shards"]["written_this_run"] == 0
    with pytest.raises(PlanMismatch, match="measure"):
        run(config(out, inputs(demo_root, sounds=False), shard={"max_samples": 16}), progress=False)
    assert prosody.measure(np.zeros(16000, np.float32), 16000, "a b")["prosody_error"].startswith("no voiced")
