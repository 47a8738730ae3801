"""Sphinx extension: pages that read the book's own outputs at build time, so nothing is typed twice.

- ``{chapter-cards}``: a card per chapter in the table of contents, with the chapter's title, the
  first line of its "What you will learn", a thumbnail taken from its executed outputs (the first
  image of the cell tagged ``thumbnail``, else its first image) and the run time recorded in its
  metadata.
- ``{results-table}``: every results record in ``results/`` as a table.
- ``{exercise-table}``: per chapter, its exercises (checked or open) and its recorded run time.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _chapters(srcdir: Path) -> list[Path]:
    toc = yaml.safe_load((srcdir / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [srcdir / f"{f}.ipynb" for f in files if (srcdir / f"{f}.ipynb").is_file()]


def _thumbnail(nb) -> str | None:
    cells = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in cells if "thumbnail" in c.get("metadata", {}).get("tags", [])]
    for cell in tagged + cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                return png
    return None


def _inline(text: str) -> str:
    """Escape text for HTML, keeping Markdown's `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _relative_root(docname: str) -> str:
    return "../" * docname.count("/")


def _read_chapter(directive: SphinxDirective, path: Path) -> SimpleNamespace:
    """A chapter's notebook, title, link from the current page, and recorded run (empty if never executed)."""
    directive.env.note_dependency(str(path))
    nb = nbformat.read(path, as_version=4)
    srcdir = Path(directive.env.srcdir)
    return SimpleNamespace(
        nb=nb,
        title=re.search(r"^#\s+(.+)$", nb.cells[0].source, re.M).group(1).strip(),
        link=f"{_relative_root(directive.env.docname)}{path.relative_to(srcdir).with_suffix('.html').as_posix()}",
        record=nb.metadata.get("cnnbook", {}),
    )


class ChapterCards(SphinxDirective):
    def run(self):
        srcdir = Path(self.env.srcdir)
        root = _relative_root(self.env.docname)
        thumbs = Path(self.env.app.outdir) / "_static" / "thumbs"
        thumbs.mkdir(parents=True, exist_ok=True)
        cards = []
        for number, path in enumerate(_chapters(srcdir), start=1):
            chapter = _read_chapter(self, path)
            learn = re.search(r"^- (.+)$", chapter.nb.cells[0].source, re.M)
            blurb = learn.group(1).rstrip(";.") if learn else ""
            record = chapter.record
            when = (f"runs in {record['duration_s'] / 60:.1f} min ({record['profile']} profile, "
                    f"{record['device_name']})") if record else "not executed yet"
            image = ""
            png = _thumbnail(chapter.nb)
            if png:
                (thumbs / f"{path.stem}.png").write_bytes(base64.b64decode(png))
                image = (f'<img class="cnnbook-thumb" src="{root}_static/thumbs/{path.stem}.png" '
                         f'alt="{html.escape(chapter.title)}">')
            cards.append(
                f'<a class="cnnbook-card" href="{chapter.link}">{image}<div class="cnnbook-card-body">'
                f"<strong>{number}. {_inline(chapter.title)}</strong><p>{_inline(blurb)}.</p>"
                f'<p class="cnnbook-when">{html.escape(when)}</p></div></a>'
            )
        return [nodes.raw("", f'<div class="cnnbook-cards">{"".join(cards)}</div>', format="html")]


class ResultsTable(SphinxDirective):
    def run(self):
        from cnnbook.results import TABLE_COLUMNS, load_results, main_profile, table_rows

        folder = Path(self.env.srcdir) / "results"
        for path in sorted(folder.glob("*.json")):
            self.env.note_dependency(str(path))
        records = load_results(folder)
        if not records:
            return [nodes.paragraph(text="No results recorded yet: execute a chapter (make execute).")]
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in table_rows(records))
        table = (f'<table class="table cnnbook-results"><thead><tr>'
                 f'{"".join(f"<th>{html.escape(h)}</th>" for h in TABLE_COLUMNS)}</tr></thead><tbody>{body}</tbody></table>')
        others = sorted({r.profile for r in records} - {main_profile(records)})
        note = (f"<p>† from the {html.escape(', '.join(others))} profile: not comparable row by row.</p>"
                if others else "")
        return [nodes.raw("", f'<div class="cnnbook-scroll">{table}</div>{note}', format="html")]


def exercises(nb) -> list[tuple[bool, str]]:
    """(checked?, first sentence) of each exercise in the chapter's "## Exercises" cell."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("## Exercises"):
            found = []
            for match in re.finditer(r"^\d+\.\s+(\*\*\(checked\)\*\*\s+)?(.+)$", cell.source, re.M):
                sentence = re.split(r"(?<=[.?!])\s", match.group(2).strip())[0]
                found.append((bool(match.group(1)), sentence))
            return found
    return []


class ExerciseTable(SphinxDirective):
    def run(self):
        rows = []
        for number, path in enumerate(_chapters(Path(self.env.srcdir)), start=1):
            chapter = _read_chapter(self, path)
            minutes = f"{chapter.record['duration_s'] / 60:.1f} min" if chapter.record else "?"
            items = exercises(chapter.nb)
            listed = "".join(f"<li><em>{'checked' if checked else 'open'}</em>: {_inline(text)}</li>"
                             for checked, text in items)
            rows.append(f'<tr><td><a href="{chapter.link}">{number}. {_inline(chapter.title)}</a></td>'
                        f"<td>{minutes}</td>"
                        f"<td>{sum(c for c, _ in items)} checked, {sum(not c for c, _ in items)} open"
                        f"<ul>{listed}</ul></td></tr>")
        table = ('<table class="table cnnbook-exercises"><thead><tr><th>chapter</th><th>run time (recorded)</th>'
                 f'<th>exercises</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
        return [nodes.raw("", table, format="html")]


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated <script> entries: sphinx-thebe registers its inline configuration twice under
    jupyter-book 1.0.4, and the second `const THEBE_JS_URL` is a JavaScript error on every page."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = attributes.get("body") or getattr(script, "filename", str(script))  # inline: by body
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.add_directive("chapter-cards", ChapterCards)
    app.add_directive("results-table", ResultsTable)
    app.add_directive("exercise-table", ExerciseTable)
    app.add_css_file("cnnbook.css")
    app.connect("html-page-context", _dedupe_scripts)
    # A first visit has no saved light/dark mode; the theme then logs "Got invalid theme mode" as an error.
    app.add_js_file(None, body='if (!document.documentElement.dataset.mode) '
                               '{ document.documentElement.dataset.mode = "auto"; }')
    return {"version": "0.1", "parallel_read_safe": True}
