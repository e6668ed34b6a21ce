"""The lesson weights (invlab.lessons): each file matches its SHA-256, is small, loads safely,
and gives on the test set the accuracy its manifest records (re-measured here)."""

from __future__ import annotations

import shutil

import pytest

import invlab.lessons as lessons
from invlab.data import load_dataset
from invlab.data.preprocess import preprocess_data
from invlab.io import sha256_file
from invlab.training.evaluate import accuracy


def test_every_lesson_file_matches_its_digest_and_they_are_small():
    records = lessons.manifest()
    assert set(records) == set(lessons.LESSONS.values())
    total = 0
    for name, record in records.items():
        path = lessons.FOLDER / name
        assert sha256_file(path) == record["sha256"], name
        total += path.stat().st_size
    assert total <= 2 * 1024 * 1024


@pytest.mark.parametrize("key", list(lessons.LESSONS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_a_lesson_network_gives_its_recorded_test_accuracy(key):
    dataset, model_name = key
    record = lessons.manifest()[lessons.LESSONS[key]]
    model = lessons.lesson_model(model_name, dataset)
    data = preprocess_data(load_dataset(dataset, 5, 0), record["config"]["preprocess"])
    measured = accuracy(model, data.x_test, data.y_test)
    assert measured == pytest.approx(record["test_accuracy"], abs=0.05)  # a few near-ties may flip across builds
    assert measured > (90 if dataset == "mnist" else 60)  # a trained network, not a 30-step one


def test_a_changed_lesson_file_is_refused_with_the_fix(tmp_path, monkeypatch):
    for f in [lessons.MANIFEST, *(lessons.FOLDER / n for n in lessons.LESSONS.values())]:
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.setattr(lessons, "FOLDER", tmp_path)
    monkeypatch.setattr(lessons, "MANIFEST", tmp_path / lessons.MANIFEST.name)
    path = tmp_path / lessons.LESSONS[("mnist", "smallcnn-mean")]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its SHA-256.*python -m benchmarks.lessons.lesson_weights"):
        lessons.lesson_model()
    with pytest.raises(ValueError, match="no lesson weights for largecnn-mean on mnist"):
        lessons.lesson_checkpoint("largecnn-mean")
