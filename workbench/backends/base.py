"""What every stage backend has: validated options, an availability check, a load step, versions."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from workbench.errors import BackendUnavailable


class BackendOptions(BaseModel):
    """Options of one backend, read from a recipe table. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend:
    name: ClassVar[str] = ""
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    #: PyPI distributions this backend imports: (import name, distribution name).
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: True when its calls go to an API server (a run there may be billed: no warm-up; cost from the API price)
    api: ClassVar[bool] = False

    def __init__(self, options: BackendOptions):
        self.options = options

    @classmethod
    def requirements(cls, options: BackendOptions) -> tuple[tuple[str, str], ...]:
        """The (import name, distribution) pairs these options need."""
        return cls.requires

    @classmethod
    def check(cls, options: BackendOptions) -> None:
        """Raise :class:`BackendUnavailable` if this backend cannot run here. Cheap: loads nothing."""
        require_packages(cls.requirements(options), extra_hint=f"(needed by the {cls.name!r} backend)")

    @classmethod
    def remote(cls, options: BackendOptions) -> str | None:
        """What this backend sends off this machine and where ("sends audio to api.openai.com"), or None when it
        calls no server beyond loopback. Cheap: contacts nothing."""
        return None

    @classmethod
    def downloads(cls, options: BackendOptions) -> str | None:
        """What loading would download ("would download REPO (~16.8 GB) on first use"), or None when every model
        is here (bundled, a local folder, or in the local hub cache). Cheap: contacts nothing."""
        return None

    def load(self) -> None:
        """Load models; called once, timed as the run's ``load`` stage."""

    def unload(self) -> None:
        """Release models."""

    def fresh_random_state(self) -> bool:
        """Make the next run start from the seeded random state when seeding alone cannot (state held where
        ``seed_everything`` does not reach, e.g. a native per-thread generator); True when it rebuilt something.
        Called by the runner between recordings, outside the stage timings."""
        return False

    def describe(self) -> dict:
        """What produced the output: model ids, sources and settings (no secrets: credentials in URLs removed)."""
        from workbench.llm_client import redact_url

        info = {"backend": self.name, **self.options.model_dump(mode="json")}
        return {k: redact_url(v) if k.endswith("url") and isinstance(v, str) else v for k, v in info.items()}

    def versions(self) -> dict[str, str]:
        return package_versions(dist for _, dist in self.requirements(self.options))


def remote_server(base_url: str, base_url_env: str | None = None) -> str | None:
    """Where a server URL points, when that is not this machine: its host (no credentials), or "the server in
    $VAR" when the URL comes from the environment (counted as remote: it is not in the recipe). None for
    127.0.0.0/8, ::1 and localhost."""
    import ipaddress
    from urllib.parse import urlsplit

    if base_url_env and os.environ.get(base_url_env):
        return f"the server in ${base_url_env}"
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return "an unparsable URL"
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return host or "an unparsable URL"


def require_packages(requires: tuple[tuple[str, str], ...], extra_hint: str = "") -> None:
    missing = [dist for module, dist in requires if importlib.util.find_spec(module) is None]
    if missing:
        raise BackendUnavailable(
            f"missing Python package{'s' if len(missing) > 1 else ''} {', '.join(missing)} {extra_hint}".strip(),
            f"install with: pip install {' '.join(missing)}",
        )


def package_versions(dists) -> dict[str, str]:
    out = {}
    for dist in dists:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
