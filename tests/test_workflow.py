"""The GitHub Pages workflow (it cannot run here): valid YAML that builds with the README's command."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_pages_workflow_builds_with_the_readme_command_and_deploys():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert "main" in triggers["push"]["branches"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    commands = [step.get("run", "") for step in build["steps"]]
    assert "make book" in commands and "make book" in (ROOT / "README.md").read_text()
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"


def test_every_subpackage_is_packaged():
    """A non-editable install (Colab's) must contain every cnnbook package, e.g. cnnbook.exercises."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    subpackages = {p.parent.relative_to(ROOT).as_posix().replace("/", ".")
                   for p in (ROOT / "cnnbook").rglob("__init__.py")}
    include = config["packages"]["find"]["include"]
    from fnmatch import fnmatch

    assert all(any(fnmatch(name, pattern) for pattern in include) for name in subpackages), subpackages
