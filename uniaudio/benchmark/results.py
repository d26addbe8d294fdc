"""The result files of `benchmark run`, described once: RESULTS/results/{task}/{system}/aggregate.json
and each line of its items.jsonl, as JSON Schemas (`AGGREGATE_SCHEMA`, `ITEM_SCHEMA`; written out
as `benchmark/results.schema.json` for other tools). The runner validates what it writes and
`benchmark publish` what it reads (result files are data from elsewhere), like lm-eval's
results schema. NaN is allowed in values (a failed metric), never as a made-up number."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SCHEMA_FILE = Path(__file__).with_name("results.schema.json")

_VALUE = {"type": ["number", "null", "string", "boolean", "array", "object"]}
AGGREGATE_SCHEMA = {
    "type": "object",
    "required": ["task", "system", "metrics", "run"],
    "properties": {
        "task": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "system": {"type": "string"},
        "system_card": {"type": "object"},
        "suite": {"type": ["string", "null"]},
        "seeds": {"type": "object", "required": ["n", "values"], "properties": {
            "n": {"type": "integer", "minimum": 2}, "values": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["mean", "std", "per_seed"],
                "properties": {"mean": {"type": "number"}, "std": {"type": "number"},
                               "per_seed": {"type": "array", "items": {"type": "number"}}}}}}},
        "protocol": {"type": ["object", "null"], "properties": {
            "name": {"type": "string"}, "paper_setting": {"type": "boolean"}}},
        "suite_card": {"type": ["object", "null"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}, "line": {"type": "string"},
            "missing": {"type": "integer", "minimum": 0}}},
        "test_set": {"type": "object", "properties": {"file": {"type": "string"},
                                                      "sha256": {"type": ["string", "null"]},
                                                      "items": {"type": ["integer", "null"]}}},
        "items": {"type": "integer", "minimum": 0},
        "metrics": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["value"],
            "properties": {"value": {"type": "object", "additionalProperties": _VALUE},
                           "items_scored": {"type": "integer", "minimum": 0},
                           "items_failed": {"type": "integer", "minimum": 0},
                           "items_missing": {"type": "integer", "minimum": 0},
                           "failure_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
                           "error": {"type": "string"}, "card": {"type": "object"}}}},
        "run": {"type": "object", "properties": {"date": {"type": "string"}, "uniaudio": {"type": "string"}}},
    },
}
ITEM_SCHEMA = {
    "type": "object",
    "required": ["id", "values"],
    "properties": {
        "id": {"type": "string"}, "task": {"type": "string"}, "system": {"type": "string"},
        "values": {"type": "object", "additionalProperties": _VALUE},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "hyp": {"type": ["string", "null"]}, "ref": {"type": ["string", "null"]}, "output": {},
    },
}
SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "uniaudio.results/1",
          "title": "uniaudio benchmark results: aggregate.json and one items.jsonl line",
          "$defs": {"aggregate": AGGREGATE_SCHEMA, "item": ITEM_SCHEMA}}


class ResultError(ValueError):
    """A result file that does not follow the schema (the reason names the field)."""


@functools.lru_cache(maxsize=None)
def _validator(kind: str):
    """Built once per process: the runner checks every item it writes, publish every line it reads."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(AGGREGATE_SCHEMA if kind == "aggregate" else ITEM_SCHEMA)


def _check(obj, kind: str, what: str) -> None:
    err = next(iter(sorted(_validator(kind).iter_errors(obj), key=lambda e: list(e.path))), None)
    if err is not None:
        where = ".".join(str(p) for p in err.path) or "(top level)"
        raise ResultError(f"{what}: {where}: {err.message[:300]}")


def check_aggregate(agg) -> None:
    _check(agg, "aggregate", "aggregate.json")


def check_item(item, line: int | None = None) -> None:
    _check(item, "item", "items.jsonl" + (f" line {line}" if line is not None else ""))


def schema_text() -> str:
    return json.dumps(SCHEMA, indent=2, sort_keys=True) + "\n"
