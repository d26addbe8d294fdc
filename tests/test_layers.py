"""The import graph of uniaudio/ (tools/import_graph.py): no part imports a layer above it, and
no modules import each other in a circle."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_graph.py"


def _tool():
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_upward_import_and_no_circle(capsys):
    tool = _tool()
    g = tool.graph()
    assert len(g) > 80 and "uniaudio.train.lm" in g
    assert tool.upward(g) == []
    assert tool.circles(g) == []
    assert tool.main([]) == 0
    assert tool.UNRESOLVED == []
    assert "0 upward, 0 circle(s), 0 unresolved" in capsys.readouterr().out


def test_the_check_catches_upward_imports_and_circles(tmp_path, capsys):
    """A package with a lazy upward import (train -> benchmark) and a type-only circle."""
    pkg = tmp_path / "uniaudio"
    for sub in ("train", "benchmark", "pipeline"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "benchmark" / "mmlu.py").write_text("X = 1\n")
    (pkg / "train" / "generate.py").write_text("def f():\n    from ..benchmark.mmlu import X\n    return X\n")
    (pkg / "pipeline" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n")
    (pkg / "pipeline" / "b.py").write_text("from . import a\nB = 1\n")
    (pkg / "benchmark" / "moved.py").write_text("def f():\n    from ..demo import sounds\n")  # a level too few
    tool = _tool()
    g = tool.graph(pkg)
    assert tool.upward(g) == ["uniaudio.train.generate -> uniaudio.benchmark.mmlu (train imports benchmark)"]
    assert tool.circles(g) == [["uniaudio.pipeline.a", "uniaudio.pipeline.b"]]
    assert tool.main([str(pkg)]) == 1
    assert tool.UNRESOLVED == ["uniaudio.benchmark.moved: from ..demo import ... (uniaudio.demo does not exist)"]
    assert "1 upward, 1 circle(s), 1 unresolved" in capsys.readouterr().out


def test_the_trainer_stays_compact():
    """nanoGPT's measure: the model and its training loop read in under 1,000 lines, no
    function over 80 (speed kernels, configs and the LLM loader live beside them)."""
    import ast

    train = Path(__file__).resolve().parents[1] / "uniaudio" / "train"
    total = 0
    for name in ("model.py", "lm.py"):
        src = (train / name).read_text()
        total += len(src.splitlines())
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 80, f"{name}: {node.name} is {node.end_lineno - node.lineno + 1} lines"
    assert total < 1000, total


def test_scripts_import_names_that_exist():
    """benchmarks/ and tools/ import from uniaudio: a move inside the package must carry them
    along (they are not imported by any test otherwise)."""
    import ast
    import importlib

    repo = Path(__file__).resolve().parents[1]
    missing = []
    for f in sorted([*repo.glob("benchmarks/*.py"), *repo.glob("tools/**/*.py")]):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("uniaudio"):
                mod = importlib.import_module(node.module)
                for a in node.names:
                    if not hasattr(mod, a.name) and importlib.util.find_spec(f"{node.module}.{a.name}") is None:
                        missing.append(f"{f.relative_to(repo)}: {node.module}.{a.name}")
    assert missing == []
