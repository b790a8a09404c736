"""The import layering, checked on the source: every ``import`` in every module of the package, module-level
and inside functions alike (a lazy import is still an arrow), parsed with ``ast``.

Layers, lowest first (a module may import from its own layer and the ones below, never from above):

  core       data model, errors, audio decoding and its constants, JSON safety, timing, prices, clients
  inputs     references, metrics, scoring, hallucination measures and probes, the result model, question sets
             and answer scoring (workbench.tasks; its summary and its ranking of votes, which use the aggregation and
             the store, are records; the judge's prompts and reply reading are inputs, the judge model that asks a
             formatter backend, workbench.judging, is a record)
  backends   each stage's backends and the audio-LLM model families
  pipelines  the pipelines (cascade, audio-LLM) and the recipe specification they are built from
  recipes    recipe files: loading, validating, listing
  records    what is done with results: the store, the writers, summary.md, the reports, the exports, the
             chart specifications (Vega-Lite as plain dicts; altair stays in the faces)
  runs       what produces them: the runner, batch, the hallucination suite, the run session
  faces      the command line and the dashboard (the only users of typer, rich, streamlit, altair)

Also checked: no import circle between modules (lazy imports included), no module importing another
module's private (underscore) name (an underscore module is private to its package), and one home for the audio
constants.
Each exception is listed below with its reason; remove it when the reason goes away.
"""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).resolve().parent

LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "workbench", "workbench.errors", "workbench.datamodel", "workbench.jsonsafe", "workbench.files",
        "workbench.formatting",
        "workbench.hooks", "workbench.execution", "workbench.registry", "workbench.audio", "workbench.measure",
        "workbench.cost", "workbench.llm_client", "workbench.model_sources", "workbench.speakers",
    ),
    "inputs": (
        "workbench.references", "workbench.metrics", "workbench.scoring", "workbench.result",
        "workbench.hallucination", "workbench.hallucination.measures", "workbench.hallucination.padding",
        "workbench.hallucination.probes", "workbench.hallucination.understanding", "workbench.tasks",
    ),
    "backends": ("workbench.backends", "workbench.audio_llm", "workbench.environment"),
    "pipelines": ("workbench.pipelines",),
    "recipes": ("workbench.recipes",),
    "records": ("workbench.store", "workbench.writers", "workbench.aggregate", "workbench.summary", "workbench.report",
                "workbench.charts",
                "workbench.exports", "workbench.catalogue", "workbench.tasks.summary", "workbench.judging",
                "workbench.tasks.ranking"),
    "runs": ("workbench.runner", "workbench.batch", "workbench.hallucination.suite", "workbench.session"),
    "faces": ("workbench.cli", "workbench.__main__", "workbench.dashboard"),
}
ORDER = list(LAYERS)

#: Third-party packages only the faces may import.
FACE_ONLY = {"typer", "rich", "streamlit", "altair"}

#: (importer, imported name) -> why it is still allowed. Each one is a debt, not a rule.
PRIVATE_EXCEPTIONS: dict[tuple[str, str], str] = {}
#: (importer, imported module) -> why an arrow against the layers is still allowed.
LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    best, found = -1, None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            matches = module == prefix or (prefix != "workbench" and module.startswith(prefix + "."))
            if matches and len(prefix) > best:
                best, found = len(prefix), layer
    assert found, f"{module} is in no layer: add it to LAYERS in {__file__} (and to ARCHITECTURE.md)"
    return found


def imports(module: str, source: str | None = None) -> list[tuple[str, str, int]]:
    """``(imported module, imported name or "", line)`` for every import in ``module``; relative imports
    resolved; ``from package import submodule`` gives the submodule."""
    path = MODULES.get(module)
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    is_package = path is not None and path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub, "", node.lineno) if sub in MODULES else (target, alias.name, node.lineno))
    return out


def private_owner(target: str, name: str) -> str | None:
    """Where an imported private thing may be used: an underscore name in its own module (and, for a package,
    its modules); an underscore module in its package. ``None`` when nothing imported is private."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    if name.startswith("_") and not name.startswith("__"):
        return target
    return None


def internal_graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def layering_violations(module: str, source: str | None = None) -> list[str]:
    own = ORDER.index(layer_of(module))
    problems = []
    for target, name, line in imports(module, source):
        top = target.split(".")[0]
        if top in FACE_ONLY and layer_of(module) != "faces":
            problems.append(f"{module}:{line} imports {target} (only the faces may)")
        if target not in MODULES:
            continue
        if ORDER.index(layer_of(target)) > own and (module, target) not in LAYER_EXCEPTIONS:
            problems.append(f"{module}:{line} ({layer_of(module)}) imports {target} ({layer_of(target)})")
        private = private_owner(target, name)
        if private and not (module == private or module.startswith(private + ".")):
            key = (module, f"{target}.{name}" if name else target)
            if key not in PRIVATE_EXCEPTIONS:
                problems.append(f"{module}:{line} imports the private {key[1]} (private to {private})")
    return problems


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_import_runs_up_the_layers_or_takes_a_private_name():
    problems = [p for module in MODULES for p in layering_violations(module)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_wrong_way_import():
    """The checker itself: a lower layer importing a face, a sibling's private name, typer in the library."""
    assert layering_violations("workbench.metrics.errors", "from workbench.cli import app\n")
    assert layering_violations("workbench.backends.asr", "def f():\n    from workbench.runner import run_recipes\n")
    assert layering_violations("workbench.report", "from workbench.runner import _private\n")
    assert layering_violations("workbench.scoring", "import typer\n")
    assert not layering_violations("workbench.references.stm", "from ._common import clean_text\n")
    assert not layering_violations("workbench.cli", "from workbench.runner import run_recipes\nimport typer\n")


def test_no_import_circles():
    graph = internal_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    allowed = [sorted(c) for c in CIRCLE_EXCEPTIONS]
    left = [c for c in circles if c not in allowed]
    assert not left, "import circles: " + "; ".join(" <-> ".join(c) for c in left)


#: Circles still allowed, each with its reason.
CIRCLE_EXCEPTIONS: dict[tuple[str, ...], str] = {
    ("workbench.audio_llm.backends", "workbench.audio_llm.families", "workbench.audio_llm.families.base",
     "workbench.audio_llm.families.qwen2_audio", "workbench.audio_llm.families.unsupported"):
        "issue 12: the audio-LLM backend picks a family lazily and families.base imports Reply back from the "
        "backend module; Reply belongs below both (the audio-LLM helpers own these files)",
}


def test_one_home_for_the_audio_constants():
    """16 kHz and the audio suffixes are defined in workbench.audio only; everyone else imports them."""
    problems = []
    for module, path in MODULES.items():
        if module == "workbench.audio":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == 16000 and not isinstance(node.value, bool):
                problems.append(f"{module}:{node.lineno} writes 16000; import SAMPLE_RATE from workbench.audio")
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id in {"SAMPLE_RATE", "TARGET_RATE", "AUDIO_SUFFIXES"}:
                        problems.append(f"{module}:{node.lineno} defines {t.id}; import it from workbench.audio")
    assert not problems, "\n".join(problems)
