"""Pipeline recipes: TOML files naming the backend and settings of each stage.

A recipe is validated against the registries when it is loaded: an unknown pipeline, stage, backend or
option is an error that lists the valid ones. Its hash covers the pipeline and every stage setting
(defaults filled in), not its name or description, so the same configuration always hashes the same.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from workbench.backends.base import Backend, BackendOptions
from workbench.errors import BackendUnavailable, RecipeError
from workbench.pipelines import PIPELINES
from workbench.pipelines.spec import Recipe, StageSpec
from workbench.registry import Registry

RECIPE_SUFFIX = ".toml"


@dataclass(frozen=True)
class Availability:
    """Can a recipe run here, and would running it leave this machine: ``remote`` says what a stage sends to a
    server that is not loopback, ``downloads`` what weights loading would download ("" for neither)."""

    ok: bool
    reason: str = ""
    fix: str = ""
    remote: str = ""
    downloads: str = ""

    @property
    def local(self) -> bool:
        """Runs here with what is installed, contacting nothing: the kind of recipe run when none is named."""
        return self.ok and not self.remote and not self.downloads

    @property
    def left_out_because(self) -> str:
        """Why a run that names no recipes leaves this one out ("" when it does not)."""
        return self.remote or self.downloads or ("" if self.ok else f"not available here: {self.reason}")


def stage_registries(pipeline: str) -> dict[str, Registry]:
    """The stages of a pipeline kind, in order, each with its backend registry."""
    return PIPELINES.get(pipeline).stage_registries()


def parse_recipe(data: dict, *, name: str, path: str = "") -> Recipe:
    where = path or name
    data = dict(data)
    pipeline = data.pop("pipeline", None)
    if not isinstance(pipeline, str):
        raise RecipeError(f"{where}: missing 'pipeline = \"...\"'; known pipelines: {', '.join(PIPELINES.names())}")
    try:
        registries = stage_registries(pipeline)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    recipe_name = data.pop("name", name)
    description = data.pop("description", "")
    unknown = [k for k in data if k not in registries]
    if unknown:
        raise RecipeError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"a {pipeline!r} recipe has name, description, pipeline and the stages {', '.join(registries)}"
        )
    stages = []
    for stage, registry in registries.items():
        table = data.get(stage)
        if table is None:  # an omitted stage is skipped where the stage can be ("none"), else required
            if "none" not in registry:
                raise RecipeError(f"{where}: missing [{stage}] table; it needs backend = one of {', '.join(registry.names())}")
            table = {"backend": "none"}
        if not isinstance(table, dict):
            raise RecipeError(f"{where}: [{stage}] must be a table with a 'backend' key")
        table = dict(table)
        backend_name = table.pop("backend", None)
        if backend_name is None:
            raise RecipeError(f"{where}: [{stage}] needs backend = one of {', '.join(registry.names())}")
        try:
            backend = registry.get(backend_name)
        except RecipeError as exc:
            raise RecipeError(f"{where}: [{stage}] {exc}") from None
        stages.append(StageSpec(stage, backend_name, _validate_options(backend, table, f"{where}: [{stage}] {backend_name}")))
    return Recipe(str(recipe_name), pipeline, tuple(stages), str(description), path)


def _validate_options(backend: type[Backend], table: dict, where: str) -> BackendOptions:
    try:
        return backend.Options.model_validate(table)
    except ValidationError as exc:
        fields = sorted(backend.Options.model_fields)
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(options)"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown option {loc!r}; valid options: {', '.join(fields) or '(none)'}")
            else:
                problems.append(f"option {loc!r}: {err['msg']} (got {err.get('input')!r})")
        raise RecipeError(f"{where}: " + "; ".join(problems)) from None


def load_recipe_file(path: str | os.PathLike) -> Recipe:
    path = Path(path).resolve()  # results and listings say exactly which file a recipe came from
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise RecipeError(f"recipe file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    return parse_recipe(data, name=path.stem, path=str(path))


def recipe_dirs() -> list[Path]:
    """Where recipes are looked up: $WORKBENCH_RECIPES (os.pathsep-separated), ./pipelines, the shipped ones."""
    dirs = [Path(p) for p in os.environ.get("WORKBENCH_RECIPES", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "pipelines")
    dirs.append(Path(__file__).resolve().parent.parent / "pipelines")
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def available_recipe_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in recipe_dirs():
        for f in sorted(d.glob(f"*{RECIPE_SUFFIX}")):
            found.setdefault(f.stem, f)
    return found


def load_recipe(name_or_path: str) -> Recipe:
    """A recipe by name (from :func:`recipe_dirs`) or by path to a TOML file."""
    if name_or_path.endswith(RECIPE_SUFFIX) or os.sep in name_or_path:
        return load_recipe_file(name_or_path)
    files = available_recipe_files()
    if name_or_path not in files:
        raise RecipeError(f"unknown recipe {name_or_path!r}; known: {', '.join(files) or '(none found)'}")
    return load_recipe_file(files[name_or_path])


def check_recipe(recipe: Recipe) -> Availability:
    """Can this recipe run here, does it call a remote server, would it download weights? Cheap: checks packages,
    model files and the local hub cache; loads nothing and contacts nothing (the hub only with
    WORKBENCH_HUB_PROBE=1, see :func:`workbench.model_sources.hub_probe_enabled`)."""
    registries = stage_registries(recipe.pipeline)
    remote, downloads = [], []
    failure: Availability | None = None
    for spec in recipe.stages:
        backend = registries[spec.stage].get(spec.backend)
        if where := backend.remote(spec.options):
            remote.append(where)
        try:
            backend.check(spec.options)
        except BackendUnavailable as exc:
            failure = failure or Availability(False, f"[{spec.stage}] {spec.backend}: {exc.reason}", exc.fix)
            continue
        if what := backend.downloads(spec.options):
            downloads.append(what)
    if failure is not None:
        return Availability(failure.ok, failure.reason, failure.fix, "; ".join(remote), "; ".join(downloads))
    return Availability(True, remote="; ".join(remote), downloads="; ".join(downloads))


def default_recipes() -> tuple[list[str], list[tuple[str, str]]]:
    """The recipes a run that names none uses: those that run here with what is installed, calling no server
    beyond loopback and downloading nothing. Returns (names, [(left-out name, why)]); a recipe file that does
    not load is kept, so the run reports its error."""
    chosen: list[str] = []
    left_out: list[tuple[str, str]] = []
    for name, path in available_recipe_files().items():
        try:
            why = check_recipe(load_recipe_file(path)).left_out_because
        except RecipeError:
            why = ""
        if why:
            left_out.append((name, why))
        else:
            chosen.append(name)
    return chosen, left_out


def left_out_line(left_out: list[tuple[str, str]]) -> str:
    """One line naming the recipes a default run left out, and why."""
    return "left out (name them with --recipes to run): " + ", ".join(f"{name} ({why})" for name, why in left_out)


def recipe_listing() -> list[dict]:
    """Every recipe found, as plain data: name, path (where it was loaded from), description, pipeline, stages,
    available, reason, fix, remote, downloads; a file that does not load also has ``error``."""
    rows = []
    for name, path in available_recipe_files().items():
        try:
            recipe = load_recipe_file(path)
        except RecipeError as exc:
            rows.append({"name": name, "path": str(path), "description": "", "pipeline": None, "stages": {},
                         "available": False, "reason": str(exc), "fix": "", "remote": "", "downloads": "",
                         "error": str(exc)})
            continue
        status = check_recipe(recipe)
        rows.append({
            "name": name, "path": str(path), "description": recipe.description, "pipeline": recipe.pipeline,
            "stages": recipe.to_dict()["stages"], "available": status.ok, "reason": status.reason, "fix": status.fix,
            "remote": status.remote, "downloads": status.downloads,
        })
    return rows
