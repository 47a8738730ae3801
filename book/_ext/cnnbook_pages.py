"""Sphinx extension: pages that read the book's own outputs at build time, so nothing is typed twice.

- ``{chapter-cards}``: a card per chapter in the table of contents, with the chapter's title, the
  first item of its "What you will learn" (whole, its Markdown rendered), a thumbnail taken from its
  executed outputs (the first image of the cell tagged ``thumbnail``, else its first image that is not
  a long strip), cut and saved at the size a card shows, and the run time recorded in its metadata.
- ``{results-table}``: every results record in ``results/`` as a table, the columns a reader wants first;
  columns whose value is the same in every row are said once under the table.
- ``{exercise-table}``: per chapter, its exercises (checked or open, whole) and its recorded run time.

And for every page: figures from notebook outputs get the alt text their output carries
(``cnnbook.plots`` puts it in the output's metadata), and MathJax is served from the site itself
(``node_modules/mathjax``, installed by ``make`` with ``npm ci``), so formulas render offline.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import nbformat
import yaml
from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

THUMB_SIZE = (720, 280)  # pixels: twice a card's picture (about 360 x 140 CSS pixels)
MATHJAX = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")  # what the site serves
LANDING_COLUMNS = ("network", "test accuracy", "training time", "parameters", "MACs / image", "epochs")
LANDING_LEFT_OUT = ("precision",)  # shown per row in the comparison chapter; the landing table stays narrow


def _chapters(srcdir: Path) -> list[Path]:
    toc = yaml.safe_load((srcdir / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [srcdir / f"{f}.ipynb" for f in files if (srcdir / f"{f}.ipynb").is_file()]


def _images(cells) -> list[tuple[bytes, dict]]:
    """The PNG outputs of these cells, in order, with their output metadata."""
    found = []
    for cell in cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                found.append((base64.b64decode(png), output.get("metadata", {}).get("image/png", {})))
    return found


def _thumbnail(nb) -> tuple[bytes, str] | None:
    """A card's picture, as PNG bytes, and its alt text: the tagged cell's image, else the first image
    that is not a long strip, cut to the card's proportions at a scale where its text still reads."""
    from PIL import Image

    cells = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in cells if "thumbnail" in c.get("metadata", {}).get("tags", [])]
    images = _images(tagged) or _images(cells)
    if not images:
        return None
    def shape(png):
        with Image.open(io.BytesIO(png)) as im:
            return im.size
    strip = [(w / h > 4 or w > 2 * THUMB_SIZE[0]) for w, h in (shape(png) for png, _ in images)]
    png, meta = images[strip.index(False)] if not tagged and False in strip else images[0]
    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGB")
        width, height = THUMB_SIZE
        scale = min(1.0, max(width / im.width, height / im.height))  # fill the card, never enlarge
        if scale < 0.6:  # shrinking more would make its text unreadable: cut the middle out instead
            scale = 0.6
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        left, top = max(0, (im.width - width) // 2), 0
        im = im.crop((left, top, left + min(width, im.width), top + min(height, im.height)))
        out = io.BytesIO()
        im.save(out, "PNG", optimize=True)
    return out.getvalue(), meta.get("alt", "")


def _inline(text: str) -> str:
    """Markdown (emphasis, `code`, links) rendered as inline HTML."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").renderInline(text.strip())


def _first_item(markdown: str) -> str:
    """The first bullet of a list, whole: its wrapped lines joined."""
    match = re.search(r"^- (.+(?:\n[ \t]+\S.*)*)", markdown, re.M)
    return " ".join(line.strip() for line in match.group(1).splitlines()) if match else ""


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
            blurb = _first_item(chapter.nb.cells[0].source).rstrip(";.")
            record = chapter.record
            arithmetic = f"{record['precision']}, " if record.get("precision") else ""
            when = (f"runs in {record['duration_s'] / 60:.1f} min ({record['profile']} profile, "
                    f"{arithmetic}{record['device_name']})") if record else "not executed yet"
            image = ""
            thumb = _thumbnail(chapter.nb)
            if thumb:
                png, alt = thumb
                (thumbs / f"{path.stem}.png").write_bytes(png)
                image = (f'<img class="cnnbook-thumb" src="{root}_static/thumbs/{path.stem}.png" '
                         f'alt="{html.escape(alt or "A figure from the chapter " + chapter.title)}">')
            cards.append(
                f'<a class="cnnbook-card" href="{chapter.link}">{image}<div class="cnnbook-card-body">'
                f"<strong>{number}. {_inline(chapter.title)}</strong><p>{_inline(blurb + '.')}</p>"
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
        rows = table_rows(records)
        columns = list(TABLE_COLUMNS)
        # the columns a reader wants first; a column with one value in every row is said once, below
        same = [c for i, c in enumerate(columns) if c not in LANDING_COLUMNS and len({r[i] for r in rows}) == 1]
        shown = [c for c in LANDING_COLUMNS if c in columns] + [
            c for c in columns if c not in LANDING_COLUMNS and c not in same and c not in LANDING_LEFT_OUT]
        index = [columns.index(c) for c in shown]
        body = "".join("<tr>" + "".join(f"<td>{html.escape(row[i])}</td>" for i in index) + "</tr>" for row in rows)
        table = (f'<table class="table cnnbook-results"><thead><tr>'
                 f'{"".join(f"<th>{html.escape(h)}</th>" for h in shown)}</tr></thead><tbody>{body}</tbody></table>')
        notes = []
        if same:
            notes.append("Every row: " + ", ".join(f"{c} {rows[0][columns.index(c)]}" for c in same) + ".")
        others = sorted({r.profile for r in records} - {main_profile(records)})
        if others:
            notes.append(f"† from the {', '.join(others)} profile: not comparable row by row.")
        note = "".join(f'<p class="cnnbook-note">{html.escape(n)}</p>' for n in notes)
        return [nodes.raw("", f'<div class="cnnbook-scroll">{table}</div>{note}', format="html")]


CHECKED = re.compile(r"\*\*\((checked(?:, [a-z]+)?)\)\*\*\s*")  # **(checked)**, **(checked, why)**...


def exercises(nb) -> list[tuple[str, str]]:
    """(kind, text) of each exercise of the chapter: the numbered items after its "## Exercises"
    heading, whole (wrapped lines joined), up to the folded solutions or the next heading. The kind is
    the item's mark ("checked", "checked, why", "checked, coding") or "open"."""
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    match = re.search(r"^## Exercises[ \t]*$", text, re.M)
    if not match:
        return []
    section = re.split(r"<details|^#{1,3} ", text[match.end():], maxsplit=1, flags=re.M)[0]
    found = []
    for item in re.finditer(r"^\d+\.\s+(.+(?:\n[ \t]+\S.*)*)", section, re.M):
        words = " ".join(line.strip() for line in item.group(1).splitlines())
        mark = CHECKED.match(words)
        found.append((mark.group(1) if mark else "open", words[mark.end():] if mark else words))
    return found


class ExerciseTable(SphinxDirective):
    def run(self):
        rows = []
        for number, path in enumerate(_chapters(Path(self.env.srcdir)), start=1):
            chapter = _read_chapter(self, path)
            minutes = (f"{chapter.record['duration_s'] / 60:.1f} min"
                       + (f" ({chapter.record['precision']})" if chapter.record.get("precision") else "")
                       if chapter.record else "?")
            items = exercises(chapter.nb)
            listed = "".join(f"<li><em>{kind}</em>: {_inline(text)}</li>" for kind, text in items)
            checked = sum(kind != "open" for kind, _ in items)
            rows.append(f'<tr><td><a href="{chapter.link}">{number}. {_inline(chapter.title)}</a></td>'
                        f"<td>{minutes}</td>"
                        f"<td>{checked} checked, {len(items) - checked} open"
                        f"<ul>{listed}</ul></td></tr>")
        table = ('<table class="table cnnbook-exercises"><thead><tr><th>chapter</th><th>run time (recorded)</th>'
                 f'<th>exercises</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
        return [nodes.raw("", f'<div class="cnnbook-scroll">{table}</div>', format="html")]


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


_FIGURE_CALLS = {  # what a figure shows, by the cnnbook call that drew it (outputs made before alt texts)
    "show_mistakes": "The test images the network gets wrong with the highest confidence, with their "
                     "predicted and true classes",
    "plot_confusion_matrix": "Confusion matrix of the test images: true class against predicted class",
    "plot_network": "Network drawing: one box per layer or block, with its output shape",
    "plot_tradeoffs": "Test accuracy of every chapter's network against its parameters, multiply-accumulates "
                      "and training time",
    "compare_histories": "Curves comparing the runs, epoch by epoch",
    "show_images": "A grid of Fashion-MNIST images with their titles",
    "train(": "Learning curves: training loss, and training and held-out accuracy per epoch",
}


def _alt_from_code(source: str) -> str:
    """An alt text for an output figure that carries none: from the cnnbook call that drew it, else from
    the title the code gives it."""
    for call, text in _FIGURE_CALLS.items():
        if call in source:
            return text
    title = re.search(r"""(?:title|suptitle)\((?:[^"']*)["']([^"']{8,})["']""", source) or \
        re.search(r"""title=f?["']([^"']{8,})["']""", source)
    return f"Figure: {title.group(1)}" if title else "Figure drawn by the code cell above"


def _output_alt_texts(app, doctree):
    """Give each figure from a notebook output the alt text stored with the output (by cnnbook.plots).
    myst-nb names an output's image file by the SHA-256 of its bytes, so the two are matched by hash."""
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb":
        return
    nb = nbformat.read(path, as_version=4)
    alts = {}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        for png, meta in _images([cell]):
            alts[hashlib.sha256(png).hexdigest()] = str(meta.get("alt") or _alt_from_code(cell.source))
    for image in doctree.findall(nodes.image):
        digest = Path(image["uri"]).stem
        if digest in alts and not image.get("alt"):
            image["alt"] = alts[digest]


MIN_FIGURE_SCALE = 0.62  # an output figure is never shown narrower than this share of its drawn width


def _figure_min_widths(app, pagename, templatename, context, doctree):
    """Give each output figure a minimum width, so that a narrow screen never shrinks its text out of
    reading: below it, the figure scrolls in its output box (CSS) instead."""
    if not doctree or "body" not in context:
        return
    path = Path(app.env.doc2path(pagename))
    if path.suffix != ".ipynb":
        return
    from PIL import Image

    widths = {}
    for png, _ in _images(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"):
        with Image.open(io.BytesIO(png)) as im:
            widths[hashlib.sha256(png).hexdigest()] = im.width

    def add_style(match):
        width = widths.get(match.group(2))
        if not width or "style=" in match.group(0):
            return match.group(0)
        return f'{match.group(1)} style="min-width: {round(MIN_FIGURE_SCALE * width)}px"{match.group(3)}'
    context["body"] = re.sub(r'(<img\b[^>]*?src="[^"]*?([0-9a-f]{64})\.png"[^>]*?)(\s*/?>)', add_style,
                             context["body"])


def _serve_mathjax(app, exception):
    """Copy MathJax from node_modules into the site (the page loads it from _static/mathjax), and give the
    site a /favicon.ico (browsers ask for it whatever the page links: a 404 is a console error)."""
    if exception or app.builder.format != "html":
        return
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(icon).rounded_rectangle((2, 2, 29, 29), radius=6, fill="#4C72B0")
    icon.save(Path(app.outdir) / "favicon.ico")
    source = Path(app.srcdir) / "node_modules" / "mathjax" / "es5"
    if not source.is_dir():
        raise ExtensionError("node_modules/mathjax is missing: run `make setup` (npm ci) to install it")
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app):
    app.add_directive("chapter-cards", ChapterCards)
    app.add_directive("results-table", ResultsTable)
    app.add_directive("exercise-table", ExerciseTable)
    app.add_css_file("cnnbook.css")
    app.connect("html-page-context", _dedupe_scripts)
    app.connect("doctree-read", _output_alt_texts)
    app.connect("html-page-context", _figure_min_widths)
    app.connect("build-finished", _serve_mathjax)
    # A first visit has no saved light/dark mode; the theme then logs "Got invalid theme mode" as an error.
    app.add_js_file(None, body='if (!document.documentElement.dataset.mode) '
                               '{ document.documentElement.dataset.mode = "auto"; }')
    return {"version": "0.1", "parallel_read_safe": True}
