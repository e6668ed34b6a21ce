"""Every accuracy quoted in README.md and docs/RESULTS.md traces to a results file.

A number written as a percentage with decimals ("95.65 %") or as a mean ± std pair
("90.52 ± 4.94") must appear, at the precision printed, among the numbers of the JSON
files under ``results/`` (written by the committed commands those documents name). Copied
by hand, a number drifts from its source; this test catches it.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "RESULTS.md"]
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


def _known() -> set[float]:
    out: set[float] = set()
    for path in (ROOT / "results").rglob("*.json"):
        _numbers(json.loads(path.read_text()), out)
    return out


def _matches(text: str, known: set[float]) -> bool:
    decimals = len(text.split(".")[1])
    value = float(text)
    return any(round(k, decimals) == value or round(k * 100, decimals) == value for k in known)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_quoted_accuracies_come_from_results_files(doc):
    known = _known()
    missing = []
    for lineno, line in enumerate(doc.read_text().splitlines(), 1):
        if any(m in line for m in PAPER_MARKERS):
            continue  # a line about numbers that are not results of ours
        for m in PAIR.finditer(line):
            for text in m.groups():
                if not _matches(text, known):
                    missing.append(f"{doc.name}:{lineno}: {text} (in '{m.group(0)}')")
        for m in PERCENT.finditer(line):
            if not _matches(m.group(1), known):
                missing.append(f"{doc.name}:{lineno}: {m.group(0)}")
    assert not missing, "numbers with no results file behind them:\n" + "\n".join(missing)
