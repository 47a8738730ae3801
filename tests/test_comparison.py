"""The comparison chapter: reads every results record, marks rows from another profile, shows them all."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from cnnbook import book
from cnnbook.results import TABLE_COLUMNS, Result, accuracy_text, load_results, markdown_table, table_rows

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "11_comparison.ipynb"


def record(chapter: str, profile: str = "cpu", acc: float = 0.9) -> Result:
    return Result(chapter=chapter, architecture=chapter.title(), profile=profile, device="cpu",
                  device_name="CPU (2 threads)", num_epochs=3, parameters=1000, macs=2_000_000,
                  input_size=(1, 1, 28, 28), test_acc=acc, train_acc=acc, train_loss=0.3, wall_time_s=90.0,
                  examples_per_s=2000.0)


def test_rows_follow_the_book_and_mark_another_profile():
    records = [record("vgg"), record("lenet"), record("nin", profile="smoke"), record("alexnet")]
    rows = table_rows(records)
    assert [r[0] for r in rows] == ["Lenet", "Alexnet", "Vgg", "Nin"]
    profile = TABLE_COLUMNS.index("profile")
    assert [r[profile] for r in rows] == ["cpu", "cpu", "cpu", "smoke †"]
    table = markdown_table(records)
    assert "† from the smoke profile" in table and table.count("\n|") == 5


def test_one_profile_has_no_marks():
    table = markdown_table([record("lenet"), record("vgg")])
    assert "†" not in table


def test_columns_every_row_shares_are_said_once_under_the_table():
    """With profile and device on every row the table was wider than the desktop text column."""
    table = markdown_table([record("lenet"), record("vgg")])
    header = table.splitlines()[0]
    assert "profile" not in header and "device" not in header and "precision" in header
    assert table.rstrip().endswith("Every row: the `cpu` profile on CPU (2 threads).")
    mixed = markdown_table([record("lenet"), record("vgg", profile="smoke")])
    assert "| profile |" in mixed.splitlines()[0] and "Every row: on CPU (2 threads)." in mixed


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts += [str(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(parts)


def test_committed_chapter_shows_every_record_in_results():
    shown = outputs_text(nbformat.read(CHAPTER, as_version=4))
    records = load_results(ROOT / "results")
    assert records
    for r in records:
        assert f"| {r.architecture} |" in shown, f"{r.architecture} (results/{r.chapter}.json) is missing: " \
                                                 f"re-execute {CHAPTER.name} after the chapters"
        assert accuracy_text(r) in shown  # "92.41 % ± 0.26", as every table of the book writes it


def test_chapter_marks_a_row_from_another_profile(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    shutil.copytree(ROOT / "results", folder)
    first = sorted(folder.glob("*.json"))[0]
    values = json.loads(first.read_text())
    values["profile"] = "smoke"
    first.write_text(json.dumps(values))
    monkeypatch.setenv("CNNBOOK_RESULTS", str(folder))
    out = tmp_path / CHAPTER.name
    book.execute(CHAPTER, "smoke", output=out)
    shown = outputs_text(nbformat.read(out, as_version=4))
    assert f"| {values['architecture']} |" in shown and "smoke †" in shown
    assert f"Another profile (not comparable with them): {values['architecture']}" in shown


def test_figures_credited_to_a_chapter_are_that_chapters_outputs():
    """A figure of the papers' table credited to a chapter ("2.8 billion (chapter 10)") is what that
    chapter prints: the table once said 2.9 where chapter 10 computes 2.8."""
    import re

    text = " ".join(c.source for c in nbformat.read(CHAPTER, as_version=4).cells if c.cell_type == "markdown")
    credited = re.findall(r"([\d.,]+) (?:billion|million) \(chapter (\d+)\)", text)
    assert credited
    for figure, number in credited:
        notebook = next((ROOT / "chapters").glob(f"{int(number):02d}_*.ipynb"))
        shown = outputs_text(nbformat.read(notebook, as_version=4))
        assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", shown), (
            f"{figure} (credited to {notebook.name}) is not among that chapter's outputs")


def test_ties_use_the_standard_error_of_the_difference():
    from cnnbook.results import difference_is_noise

    a = record("lenet", acc=0.90)  # se 0.30 points at n = 10,000
    assert difference_is_noise(a, record("alexnet", acc=0.908))  # 0.8 < 2·√(0.30² + 0.29²) = 0.83 points
    assert not difference_is_noise(a, record("alexnet", acc=0.909))  # 0.9 > 0.83
    assert difference_is_noise(a, record("alexnet", acc=0.907))  # 0.7: beyond 2·se (0.6), within 2·√2·se


def test_gpu_records_are_gpu_runs_and_their_summary_is_current():
    """results/gpu/ holds gpu-profile records made on CUDA, one per trained chapter; summary.md (which the
    how-to-use page includes) is what gpu_table makes of them and of the book's cpu records now."""
    from cnnbook.results import gpu_table

    gpu = load_results(ROOT / "results" / "gpu")
    # chapter 12 (the speedrun) was written in a session without a GPU: no gpu run of it yet
    assert {r.chapter for r in gpu} == set(book.NETWORKS) - {"speedrun"}
    assert all(r.profile == "gpu" and r.device == "cuda" for r in gpu)
    table = gpu_table(gpu, load_results(ROOT / "results"))
    assert (ROOT / "results" / "gpu" / "summary.md").read_text() == table + "\n", \
        "results/gpu/summary.md is stale: run `python -m cnnbook.results`"
    assert "(rough)" in table and "rough estimates" in table and "not measurements" in table
    assert "{include} ../results/gpu/summary.md" in (ROOT / "book" / "how-to-use.md").read_text()


def test_gpu_table_rows_and_their_verdicts():
    from cnnbook.results import gpu_table

    gpu = [replace(record("resnet", "gpu", acc=0.95), device="cuda", device_name="NVIDIA H200"),
           replace(record("lenet", "gpu", acc=0.905), device="cuda", device_name="NVIDIA H200")]
    table = gpu_table(gpu, [record("lenet", acc=0.90)], predict=lambda r: 120.0)
    rows = table.splitlines()[2:4]
    assert rows[0].startswith("| Lenet | 90.50 | 90.00 | +0.50 (a tie) | 3 × 28 px | 2.0 min |")
    augmented = replace(gpu[1], settings=dict(augment=True, resize=64))
    assert "| 3 × 64 px, aug. |" in gpu_table([augmented], [], predict=lambda r: 60.0)
    assert rows[1].startswith("| Resnet | 95.00 | – | – |")
    assert "NVIDIA H200" in table


def test_the_chapters_table_is_the_records_now():
    """Chapter 11's first table is made from the records: re-executing a chapter without chapter 11 left
    it showing the old times and speeds (and a 'fastest to train' that no longer was)."""
    from cnnbook.results import in_book_order

    nb = nbformat.read(CHAPTER, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "markdown_table(records)" in c.source)
    shown = cell.outputs[0]["data"]["text/markdown"]
    assert shown == markdown_table(in_book_order(load_results(ROOT / "results"))), (
        "chapter 11's table differs from the records: re-execute chapters/11_comparison.ipynb")


def test_family_z_is_bonferronis_multiple():
    """Φ⁻¹(1 − 0.05/(2m)): 1.96 for one comparison, 2.81 for ten (the per-class rule), growing with m."""
    from cnnbook.results import PER_CLASS_Z, family_z

    assert family_z(1) == pytest.approx(1.96, abs=0.005)
    assert family_z(10) == pytest.approx(2.81, abs=0.005)
    assert family_z(15) == pytest.approx(2.94, abs=0.005)
    assert PER_CLASS_Z == round(family_z(10), 2) == 2.81
    assert family_z(1, level=0.01) == pytest.approx(2.576, abs=0.001)
    assert all(family_z(m) < family_z(m + 1) for m in range(1, 30))
    for wrong in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="number of comparisons"):
            family_z(wrong)


def test_difference_is_noise_takes_the_family_z():
    from cnnbook.results import difference_is_noise, family_z

    a, b = record("lenet", acc=0.90), record("alexnet", acc=0.91)  # 1.0 point, se of the difference 0.42
    assert not difference_is_noise(a, b) and difference_is_noise(a, b, z=family_z(16))


def chapter_namespace() -> dict:
    """The chapter's comparison functions (recipe, comparability, highlights), run from its cells."""
    from IPython.display import Markdown, display

    import cnnbook
    from cnnbook.results import in_book_order, main_profile

    namespace = dict(cnnbook=cnnbook, Markdown=Markdown, display=display, records=[],
                     main_profile=main_profile, in_book_order=in_book_order)
    for cell in nbformat.read(CHAPTER, as_version=4).cells:
        if cell.cell_type == "code" and any(f"def {name}(" in cell.source
                                            for name in ("recipe", "comparability", "highlights")):
            exec(compile(cell.source, str(CHAPTER), "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace


def nine_records() -> list[Result]:
    chapters = list(book.NETWORKS)
    accs = [0.905, 0.91, 0.915, 0.92, 0.912, 0.918, 0.921, 0.908, 0.9215]
    return [replace(record(c, acc=a), parameters=1000 * (i + 1), examples_per_s=1000.0 * (i + 1),
                    created=f"2026-12-0{1 + i % 2}T10:00:00+00:00",
                    versions=dict(cnnbook="0.2.0", torch="2.5.1"))
            for i, (c, a) in enumerate(zip(chapters, accs))]


def test_chapter_judges_its_pairwise_highlights_with_the_family_z():
    """The highlights compare each network with the most accurate and with the smallest: 15 pairs for 9
    networks, judged at family_z(15) = 2.94 standard errors (a 5 % family level), and the text says so."""
    from cnnbook.results import family_z

    text = chapter_namespace()["highlights"](nine_records())
    assert "compare 15 pairs of networks at once" in text and f"z = {family_z(15):.2f}" in text
    assert "family_z(15)" in text and "Bonferroni" in text
    # the smallest, Training (90.50 %), against Alexnet's 91.50 %: 1.0 point, 2.5 standard errors of the
    # difference (0.40 points): beaten at z = 2, a tie at z = 2.94; Vgg's 92.00 % (3.7 s.e.) beats it
    small = text.split("- Smallest:")[1].split("\n")[0]
    ties, beaten_by = small.split("It ties ")[1].split(";")[0], small.split("it is beaten by ")[1]
    assert "Alexnet" in ties and "Alexnet" not in beaten_by
    assert "Vgg" in beaten_by and "Vgg" not in ties


def test_chapter_generates_the_speed_caveat_from_the_records():
    namespace = chapter_namespace()
    records = nine_records()
    text = namespace["comparability"](records)
    assert "±15 %" in text
    assert "These 9 runs were made within 24.0 hours of each other, all with cnnbook 0.2.0" in text
    assert ("(for Vgg, Nin, Googlenet, Densenet, the number of epochs was set by the time budget and "
            "checked on that split), but not the same recipe: 3 epochs,") in text
    spread = [replace(r, created="2026-11-20T10:00:00+00:00") if r.chapter == "lenet" else r for r in records]
    assert "over 12 days (2026-11-20 to 2026-12-02)" in namespace["comparability"](spread)
    mixed = [replace(r, versions=dict(cnnbook="0.1.0", torch="2.5.1")) if r.chapter == "vgg" else r
             for r in records]
    assert "with different versions (cnnbook 0.1.0, 0.2.0" in namespace["comparability"](mixed)
    assert "different precisions" not in text  # every record: fp32
    bf16 = [replace(r, precision="bf16") if r.chapter == "nin" else r for r in records]
    assert "They ran in different precisions (bf16, fp32)" in namespace["comparability"](bf16)


def test_exercises_keep_the_books_records():
    """Exercise 3's smoke run writes its notebook elsewhere and its record to results/smoke/; exercise 4
    says where a new record goes in each profile."""
    text = " ".join(c.source for c in nbformat.read(CHAPTER, as_version=4).cells if c.cell_type == "markdown")
    assert "--profile smoke" in text and "--output" in text and "`results/smoke/`" in text
    assert "profile_dir(S.profile)" in text and "`results/gpu/`" in text
    assert "torchvision's count" not in text  # the papers' table holds no torchvision parameter count
