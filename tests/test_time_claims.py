"""Every page that promises a chapter time says in which arithmetic, and the committed measurements back it:
the pages once said "under three minutes per chapter on 2 cores" from bfloat16 runs that a CPU without
bfloat16 (most laptops, Colab's CPU runtime) takes 1.4-2.3 times as long to repeat."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnnbook import book, profiles

ROOT = Path(__file__).parents[1]
PAGES = sorted(ROOT.glob("book/*.md")) + [ROOT / "README.md"]
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}
CLAIM = re.compile(r"(?:under|within|in about|about|~)\s*~?(\w+)\s+minutes?\s+(?:per chapter|each|a chapter)"
                   r"|chapter\s+(?:finishes|runs)\s+in\s+under\s+(\w+)\s+minutes", re.I)


def claims():
    found = []
    for page in PAGES:
        text = " ".join(page.read_text(encoding="utf-8").split())
        for match in CLAIM.finditer(text):
            word = (match.group(1) or match.group(2)).lower()
            minutes = NUMBERS.get(word) or (int(word) if word.isdigit() else None)
            sentence = text[max(0, text.rfind(".", 0, match.start()) + 1):text.find(".", match.end()) + 1]
            found.append((page.name, minutes, sentence.strip()))
    return found


def test_the_pages_make_time_claims():
    assert len(claims()) >= 2, claims()  # the landing page and the how-to-use page at least


@pytest.mark.parametrize("page, minutes, sentence", claims())
def test_a_time_claim_names_its_arithmetic_and_holds_in_float32(page, minutes, sentence):
    assert minutes, f"{page}: cannot read the number in {sentence!r}"
    assert re.search(r"float32|fp32", sentence), f"{page}: say in which arithmetic: {sentence!r}"
    times = profiles.chapter_times()
    fp32 = {name: t["seconds"].get("fp32") for name, t in times.items() if t["chapter"] in book.NETWORKS}
    assert all(fp32.values()), f"no float32 time recorded for {[n for n, s in fp32.items() if not s]}"
    slowest = max(fp32, key=fp32.get)
    assert fp32[slowest] <= 60 * minutes, (
        f"{page} promises {minutes} minutes, but {slowest} took {fp32[slowest]:.0f} s in float32")
