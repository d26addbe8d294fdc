import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniaudio import manifest
from uniaudio.manifest import ManifestError, Record


def rec(i: int, **kw) -> Record:
    base = dict(id=f"utt-{i:05d}", corpus="demo", split="train", domain="speech", path=f"/data/{i}.flac",
                duration=1.0 + i % 7, sample_rate=16000, channels=1, text=f"words {i}", speaker=str(i % 5),
                extra={"chapter": i % 3})
    base.update(kw)
    return Record(**base)


def test_round_trip_in_row_groups(tmp_path):
    p = tmp_path / "m.parquet"
    n = manifest.write_manifest(p, (rec(i) for i in range(2500)), batch_size=1000)
    assert n == 2500 == manifest.count(p)
    assert pq.ParquetFile(p).metadata.num_row_groups == 3  # streamed, not one big table
    back = list(manifest.iter_records(p, batch_size=700))
    assert back == [rec(i) for i in range(2500)]
    assert pq.read_schema(p).equals(manifest.SCHEMA, check_metadata=False)


def test_nulls_and_defaults_survive(tmp_path):
    r = Record(id="a", corpus="c", split="s", domain="sound", path="/x.wav", caption="a dog barks")
    p = tmp_path / "m.parquet"
    manifest.write_manifest(p, [r])
    (back,) = manifest.iter_records(p)
    assert back == r and back.duration is None and back.extra == {}


@pytest.mark.parametrize(
    "change,field",
    [
        (dict(duration=-1.0), "duration"),
        (dict(duration=float("nan")), "duration"),
        (dict(offset=-0.5), "offset"),
        (dict(domain="noise"), "domain"),
        (dict(id=""), "id"),
        (dict(sample_rate=0), "sample_rate"),
        (dict(text=5), "text"),
    ],
)
def test_validation_names_field_and_row(tmp_path, change, field):
    rows = [rec(0), rec(1), rec(2, **change)]
    with pytest.raises(ManifestError) as ei:
        manifest.write_manifest(tmp_path / "m.parquet", rows)
    assert ei.value.field == field and ei.value.row == 2
    assert f"row 2, field '{field}'" in str(ei.value)
    assert not (tmp_path / "m.parquet").exists()  # no half-written manifest under the final name
    assert not (tmp_path / "m.parquet.tmp").exists()


def test_problems_lists_all_without_raising():
    bad = rec(0, duration=-2.0, domain="x").to_row()
    bad["extra"] = "[1, 2]"
    fields = [f for f, _ in manifest.problems(bad)]
    assert fields == ["domain", "duration", "extra"]
    assert manifest.problems(rec(1)) == []


def test_unknown_field_is_named():
    row = rec(0).to_row() | {"transcript": "x"}
    with pytest.raises(ManifestError, match="field 'transcript'"):
        manifest.validate(row, row=0)


def test_reading_validates_rows(tmp_path):
    p = tmp_path / "m.parquet"
    manifest.write_manifest(p, [rec(0), rec(1, duration=-3.0)], strict=False)
    with pytest.raises(ManifestError, match="row 1, field 'duration'"):
        list(manifest.iter_records(p))
    assert len(list(manifest.iter_records(p, validate_rows=False))) == 2


def test_not_a_manifest(tmp_path):
    p = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), p)
    with pytest.raises(ManifestError, match="missing column"):
        list(manifest.iter_records(p))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        list(manifest.iter_records(tmp_path / "none.parquet"))
