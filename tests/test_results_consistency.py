"""Every accuracy quoted in README.md and the site's pages (the findings, the results pages of
docs/site/results/) traces to the results file it names.

A number written as a percentage with decimals ("95.65 %") or as a mean ± std pair
("90.52 ± 4.94") must appear, at the precision printed, among the summary numbers of the
results files named on its line (``results/NAME.json`` or ``.md``), or else of those named
by the innermost section (heading) around it that names any. Not any results file: a
number copied by hand drifts, and with some 2000 summary values in ``results/`` a drifted
number often equals one of them by chance.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "RESULTS.md", *sorted((ROOT / "docs" / "site").rglob("*.md"))]
PERCENT = re.compile(r"(?<![\w.])(\d{1,3}\.\d{1,2}) ?%")
PAIR = re.compile(r"(?<![\w.])(\d{1,3}\.\d{1,2}) ± (\d{1,3}\.\d{1,2})")
# Lines about numbers that are not results of ours: the published comparisons the paper
# quotes and the targets set for this project. (The paper's own Table 2 numbers are in the
# results files, beside ours, under "paper".)
PAPER_MARKERS = ("Improved GAN", "Ladder", "target", "≥")
# Per-evaluation curves and raw timings hold thousands of numbers: a quoted result must
# match a summary field, not whatever evaluation happens to share its digits.
SKIP_KEYS = {"history", "curve", "times_s", "per_seed_val"}


def _numbers(obj, out):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        out.add(float(obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in SKIP_KEYS:
                _numbers(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _numbers(v, out)


def _matches(text: str, known: set[float]) -> bool:
    decimals = len(text.split(".")[1])
    value = float(text)
    return any(round(k, decimals) == value or round(k * 100, decimals) == value for k in known)


RESULT_FILE = re.compile(r"results/([\w./-]+?)\.(?:json|md)\b")


def _file_numbers(name: str, cache: dict) -> set[float]:
    if name not in cache:
        path = ROOT / "results" / f"{name}.json"
        cache[name] = set()
        if path.exists():
            _numbers(json.loads(path.read_text()), cache[name])
    return cache[name]


def unmatched(text: str) -> list[str]:
    """``line: number`` for every quoted number of ``text`` (a Markdown document) that is
    not a value of the results files named on its line or by its section."""
    lines = text.splitlines()
    heads = [(i, len(m.group(1))) for i, line in enumerate(lines) if (m := re.match(r"(#+) ", line))]

    def section_files(i: int) -> set[str]:
        above = [h for h in heads if h[0] <= i]
        for start, level in reversed(above):  # the innermost section that names results files
            end = next((h[0] for h in heads if h[0] > start and h[1] <= level), len(lines))
            files = set(RESULT_FILE.findall("\n".join(lines[start:end])))
            if files:
                return files
        return set()

    cache: dict = {}
    missing = []
    for i, line in enumerate(lines):
        if any(m in line for m in PAPER_MARKERS):
            continue  # a line about numbers that are not results of ours
        quoted = [t for m in PAIR.finditer(line) for t in m.groups()] + [m.group(1) for m in PERCENT.finditer(line)]
        if not quoted:
            continue
        files = set(RESULT_FILE.findall(line)) or section_files(i)
        known = set().union(*(_file_numbers(f, cache) for f in files)) if files else set()
        missing += [f"{i + 1}: {t} (results files: {', '.join(sorted(files)) or 'none named'})"
                    for t in quoted if not _matches(t, known)]
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_quoted_accuracies_come_from_the_results_files_named(doc):
    missing = unmatched(doc.read_text())
    assert not missing, f"numbers of {doc.name} that the results files named beside them do not hold:\n" + \
        "\n".join(missing)


def test_a_swapped_digit_is_caught():
    """Swapping the last two digits of quoted figures (94.38 -> 94.83, 98.2 -> 92.8) must fail the check."""
    text = (ROOT / "docs" / "site" / "results" / "mnist.md").read_text()  # the MNIST study
    figures = [m for m in PERCENT.finditer(text) if m.group(1).replace(".", "")[-1] != m.group(1).replace(".", "")[-2]
               and not any(k in text[text.rfind("\n", 0, m.start()):m.end()] for k in PAPER_MARKERS)][:40:4]
    assert len(figures) == 10
    caught = 0
    for m in figures:
        whole, point, decimals = m.group(1).partition(".")
        digits = list(whole + decimals)
        digits[-1], digits[-2] = digits[-2], digits[-1]
        swapped = "".join(digits[:len(whole)]) + point + "".join(digits[len(whole):])
        typo = text[:m.start(1)] + swapped + text[m.end(1):]
        caught += len(unmatched(typo)) > len(unmatched(text))
    assert caught >= 9, f"only {caught} of 10 swapped figures caught"
