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
    missing = subpackages - set(config["packages"])  # an explicit list (it also maps cnnbook.chapters)
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"


def test_every_jupyter_command_the_docs_give_is_installed():
    """`make setup` must install what the README and the book tell readers to run: `jupyter lab
    chapters/` once failed because requirements.txt had no jupyterlab."""
    import re
    import shutil
    import sys

    docs = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
    commands = {m for path in docs for m in re.findall(r"\bjupyter[ -]([a-z]+)\b", path.read_text())}
    commands -= {"book"}  # jupyter-book is the site builder, checked by the site test
    assert "lab" in commands
    bin_dir = Path(sys.executable).parent
    missing = [c for c in sorted(commands) if not shutil.which(f"jupyter-{c}", path=str(bin_dir))]
    assert not missing, f"the docs tell readers to run jupyter {missing}, which requirements.txt does not install"
