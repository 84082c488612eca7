"""The dependency rules of the package, checked on the source like a linter would:

    s2f.core  <-  s2f.runtime  <-  s2f.models / s2f.data / s2f.train
              <-  s2f.converters, s2f.export  <-  CLIs, orchestration

* ``s2f.core`` (errors, atomic writes, progress, extras, the command-line policy, shards, the
  split file, the cache folder, array agreement) imports nothing of ours outside itself and
  nothing outside the standard library but the base dependencies (numpy, tqdm, platformdirs),
  so every layer may import it;
* ``s2f.runtime`` is inference only: it imports nothing of ours but ``s2f.core`` (and ``s2f``
  itself for the version) and never torch, anywhere, not even inside a function;
* inside ``s2f.runtime``, each room imports only the rooms below it (``RUNTIME_ROOMS``):
  preprocess <- bundle <- engines <- pipeline <- evaluate, serve <- cli;
* nothing outside ``s2f.runtime`` reaches into it for the base layer's names;
* models never import training;
* the converters never import torch at module level (converting a Keras file needs no torch);
* nothing imports the old top-level names (``runtime``, ``export``, ...): the only top-level
  package we install is ``s2f``.

Every import statement is read from the AST, including those inside functions, with its
resolved module name and whether it sits at module level.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.helpers import REPO

# the folder each part of the namespace lives in (pyproject's package-dir)
PACKAGE_DIRS = {"s2f": "s2f", "s2f.runtime": "runtime", "s2f.converters": "converters", "s2f.export": "export",
                "s2f.weights": "weights"}
OLD_TOP_LEVEL = ("runtime", "export", "converters", "weights")
ORCHESTRATION = ("s2f.cli", "s2f.demo", "s2f.demo_cli", "s2f.pipeline", "s2f.__main__")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. s2f.runtime.bundle.reader
    target: str  # the imported module, e.g. s2f.core.errors
    top_level: bool  # at module level (not inside a function or class body)
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "s2f" and parts and f"s2f.{parts[0]}" in PACKAGE_DIRS:
                continue
            found[name] = path
    return found


def _imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    result = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                result.extend(Import(name, alias.name, top, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    package = name.split(".")[: -child.level] if not path.name == "__init__.py" else \
                        name.split(".")[: len(name.split(".")) - child.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                result.append(Import(name, base, top, child.lineno))
            inside = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
            visit(child, inside)

    visit(tree, True)
    return result


ALL_IMPORTS = [imp for name, path in _modules().items() for imp in _imports(name, path)]


def _under(target: str, *prefixes: str) -> bool:
    return any(target == prefix or target.startswith(prefix + ".") for prefix in prefixes)


def test_the_linter_sees_the_whole_package():
    modules = _modules()
    assert {"s2f.core.errors", "s2f.runtime.bundle.reader", "s2f.converters.vggface", "s2f.models.registry",
            "s2f.train.trainer", "s2f.export.onnx_export", "s2f.weights.fetch", "s2f.cli"} <= set(modules)
    inner = [imp for imp in ALL_IMPORTS if imp.module == "s2f.export.bundle" and imp.target == "torch"]
    # export/bundle.py has `from torch import nn` at the top and `import torch` inside a function
    assert sorted(imp.top_level for imp in inner) == [False, True]


def test_core_imports_only_itself_the_standard_library_and_base_dependencies():
    core = [imp for imp in ALL_IMPORTS if _under(imp.module, "s2f.core")]
    assert {imp.target for imp in core} >= {"s2f.core.errors"}  # the rule sees the package
    bad = [str(imp) for imp in core if not _under(imp.target, "s2f.core", "__future__", "numpy", "tqdm", "platformdirs")
           and imp.target.split(".")[0] not in sys.stdlib_module_names]
    assert bad == []


def test_runtime_imports_only_the_base_layer_and_never_torch():
    bad = [str(imp) for imp in ALL_IMPORTS if imp.module.startswith("s2f.runtime")
           and (_under(imp.target, "torch", "tensorflow", "tf_keras", "transformers")
                or (_under(imp.target, "s2f") and not _under(imp.target, "s2f.runtime", "s2f.core")
                    and imp.target != "s2f"))]
    assert bad == []


# each room of the runtime and the rooms it may import (besides itself, s2f.core and s2f)
RUNTIME_ROOMS = {
    "preprocess": (),
    "bundle": ("preprocess",),
    "engines": ("bundle",),
    "pipeline": ("preprocess", "bundle", "engines"),
    "directory": ("preprocess", "bundle", "engines", "pipeline"),
    "evaluate": ("preprocess", "bundle", "engines", "pipeline"),
    "serve": ("preprocess", "bundle", "engines", "pipeline"),
    "cli": ("preprocess", "bundle", "engines", "pipeline", "directory", "evaluate", "serve"),
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["s2f", "runtime"] else None


def test_each_runtime_room_imports_only_the_rooms_below_it():
    rooms = {_room(name) for name in _modules() if _room(name)}
    assert rooms == set(RUNTIME_ROOMS), rooms  # every module is in a room the rule knows
    crossings = [imp for imp in ALL_IMPORTS if _room(imp.module) and _room(imp.target)
                 and _room(imp.module) != _room(imp.target)]
    assert any(_room(imp.module) == "cli" and _room(imp.target) == "serve" for imp in crossings)  # the rule sees them
    bad = [str(imp) for imp in crossings if _room(imp.target) not in RUNTIME_ROOMS[_room(imp.module)]]
    assert bad == []


def test_the_base_layer_is_not_in_the_runtime():
    """Errors, atomic writes, progress, extras, command lines and shards live in ``s2f.core``."""
    moved = ("errors", "atomic", "progress", "extras", "command_line", "shards")
    assert not [name for name in moved if (REPO / "runtime" / f"{name}.py").exists()]
    bad = [str(imp) for imp in ALL_IMPORTS if imp.target in {f"s2f.runtime.{name}" for name in moved}]
    assert bad == []


def test_models_never_import_training_or_anything_above():
    bad = [str(imp) for imp in ALL_IMPORTS if imp.module.startswith("s2f.models")
           and _under(imp.target, "s2f.train", "s2f.converters", "s2f.export", *ORCHESTRATION)]
    assert bad == []


def test_data_and_training_never_import_converters_export_or_orchestration():
    bad = [str(imp) for imp in ALL_IMPORTS if _under(imp.module, "s2f.data", "s2f.train")
           and not imp.module.endswith(".cli")
           and _under(imp.target, "s2f.converters", "s2f.export", *ORCHESTRATION)]
    assert bad == []


def test_converters_never_import_torch_at_module_level():
    bad = [str(imp) for imp in ALL_IMPORTS if imp.module.startswith("s2f.converters") and imp.top_level
           and _under(imp.target, "torch", "safetensors.torch", "tensorflow", "tf_keras")]
    assert bad == []


def test_library_modules_never_import_the_command_lines():
    bad = [str(imp) for imp in ALL_IMPORTS if not imp.module.endswith((".cli", "__main__"))
           and imp.module not in ORCHESTRATION and (imp.target.endswith(".cli") or imp.target in ORCHESTRATION)]
    assert bad == []


@pytest.mark.parametrize("folder", ["tests", "bench"])
def test_nothing_imports_the_old_top_level_names(folder):
    sources = {**{name: path for name, path in _modules().items()},
               **{path.stem: path for path in sorted((REPO / folder).glob("*.py"))}}
    bad = [str(imp) for name, path in sources.items() for imp in _imports(name, path)
           if imp.target.split(".")[0] in OLD_TOP_LEVEL]
    assert bad == []


def test_orchestration_calls_functions_not_its_own_command_line():
    bad = [str(imp) for imp in ALL_IMPORTS if imp.module in ("s2f.pipeline", "s2f.demo")
           and (imp.target.endswith(".cli") or imp.target == "s2f.cli")]
    assert bad == []
    assert not (REPO / "converters" / "demo.py").exists()  # the demo is orchestration, not a converter


def test_library_code_logs_instead_of_printing():
    """Only the command lines print; everything else reports through ``logging``."""
    printing = []
    for name, path in _modules().items():
        if name.endswith((".cli", "_cli", "__main__")) or name in ("s2f.cli", "s2f.core.command_line"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{name}:{node.lineno}")
    assert printing == []
