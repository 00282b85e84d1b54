"""What a virtual environment lacks for nitrain: run with the environment's own Python.

    python scripts/requirements.py missing EXTRAS   print each unmet requirement, one a line
    python scripts/requirements.py all EXTRAS       print every requirement, met or not

EXTRAS is a comma-separated list of pyproject.toml's optional-dependency groups (may be empty). The
build requirements (``[build-system] requires``) are always included, so ``maturin`` is there for the
extension build whatever job comes first. ``nitrain[...]`` self-references are expanded. A requirement is
met when an installed distribution of that name has a version inside its specifier; markers are
evaluated for this interpreter. Only the standard library and pip's vendored packages are used, so it
runs in a bare venv on Python 3.10 (no ``tomllib`` there: pip's vendored ``tomli`` reads the file).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def requirements(extras: list[str]) -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    groups = project.get("optional-dependencies", {})
    own = canonicalize_name(project["name"])
    out = [Requirement(r) for r in data["build-system"]["requires"]]
    out += [Requirement(r) for r in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in groups:
            sys.exit(
                f"requirements.py: no optional-dependency group {extra!r} in pyproject.toml "
                f"(groups: {', '.join(sorted(groups))})"
            )
        for text in groups[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == own:
                todo.extend(req.extras)
            else:
                out.append(req)
    return [r for r in out if r.marker is None or r.marker.evaluate({"extra": ""})]


def met(req: Requirement) -> bool:
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] not in ("missing", "all"):
        print(__doc__, file=sys.stderr)
        return 2
    extras = [e for e in (argv[2] if len(argv) == 3 else "").split(",") if e]
    for req in requirements(extras):
        if argv[1] == "all" or not met(req):
            tag = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            print(f"{req.name}{tag}{req.specifier}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
