"""Bird10 data: segmentation, the folder / CSV loader, split by recording, the synthetic generator."""

import csv

import numpy as np
import pytest
import soundfile
import torch

from invlab.data import Recording, Segments, load_bird10, load_recordings, segment_starts, split_by_recording
from invlab.data.synthetic_birds import SPECIES, synthetic_recording
from invlab.training.evaluate import vote_accuracy


def test_segment_counts_and_boundaries():
    # 500 ms windows with 90 % overlap at 44.1 kHz: window 22050, hop 2205.
    starts = segment_starts(44_100 * 2, 22_050, 2_205)
    assert len(starts) == 1 + (88_200 - 22_050) // 2_205 == 31
    assert starts[0] == 0 and starts[-1] == 30 * 2_205 and starts[-1] + 22_050 <= 88_200
    assert len(segment_starts(22_049, 22_050, 2_205)) == 0
    assert len(segment_starts(22_050, 22_050, 2_205)) == 1


def test_segments_index_like_a_tensor():
    recs = [Recording(torch.arange(10.0), 10, 0, "a"), Recording(100 + torch.arange(7.0), 10, 1, "b")]
    seg, labels, groups = Segments.from_recordings(recs, window=4, hop=3)
    assert len(seg) == 3 + 2 and seg.shape == (5, 1, 4)
    assert labels.tolist() == [0, 0, 0, 1, 1] and groups.tolist() == [0, 0, 0, 1, 1]
    assert seg[torch.tensor([0, 2, 3])][:, 0].tolist() == [[0, 1, 2, 3], [6, 7, 8, 9], [100, 101, 102, 103]]
    assert seg[1:3].to("cpu")[:, 0, 0].tolist() == [3.0, 6.0]
    with pytest.raises(ValueError, match="shorter than one"):
        Segments.from_recordings([Recording(torch.zeros(3), 10, 0, "short")], window=4, hop=1)


def _write_folder(root, rates=(8000,), per_class=3, seconds=0.3):
    for c, name in enumerate(["owl", "wren"]):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            rate = rates[k % len(rates)]
            t = np.arange(int(seconds * rate)) / rate
            soundfile.write(root / name / f"r{k}.wav", 0.3 * np.sin(2 * np.pi * (400 + 300 * c) * t), rate)


def test_loader_reads_folders_and_resamples(tmp_path):
    _write_folder(tmp_path, rates=(8000, 16000))
    recs, classes = load_recordings(tmp_path, sample_rate=8000)
    assert classes == ["owl", "wren"] and len(recs) == 6
    assert {len(r.waveform) for r in recs} == {2400}  # 0.3 s at 8 kHz, resampled or not
    with pytest.raises(ValueError, match="mixed sample rates"):
        load_recordings(tmp_path, sample_rate=None)


def test_loader_reads_a_csv_index(tmp_path):
    _write_folder(tmp_path / "audio")
    with open(tmp_path / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for p in sorted((tmp_path / "audio").rglob("*.wav")):
            w.writerow([p.relative_to(tmp_path), p.parent.name])
    recs, classes = load_recordings(tmp_path, sample_rate=8000)
    assert classes == ["owl", "wren"] and len(recs) == 6


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="no recordings"):
        load_recordings(tmp_path)
    (tmp_path / "owl").mkdir()
    (tmp_path / "owl" / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(ValueError, match="cannot read audio file .*bad.wav"):
        load_recordings(tmp_path)


def test_split_by_recording_keeps_recordings_whole(tmp_path):
    _write_folder(tmp_path, per_class=5, seconds=1.0)
    data = load_bird10(tmp_path, sample_rate=8000, window_s=0.5, hop_s=0.05, synthetic=False)
    assert data.name == "bird10" and data.class_names == ["owl", "wren"]
    assert len(data.groups_val.unique()) == 2 and len(data.groups_test.unique()) == 2  # 1 per class each
    assert len(data.x_train) == 3 * 2 * 11  # 3 train recordings per class, 11 windows of 1 s
    recs = [Recording(torch.zeros(10), 10, c, f"{c}-{k}") for c in range(2) for k in range(5)]
    tr, va, te = split_by_recording(recs, seed=1)
    names = [r.name for r in tr + va + te]
    assert sorted(names) == sorted(r.name for r in recs) and len(set(names)) == 10
    with pytest.raises(ValueError, match="at least 3"):
        split_by_recording(recs[:2])


def test_synthetic_generator_is_deterministic_and_labelled():
    a = synthetic_recording(3, seed=7, sample_rate=8000, seconds=1.0)
    b = synthetic_recording(3, seed=7, sample_rate=8000, seconds=1.0)
    c = synthetic_recording(3, seed=8, sample_rate=8000, seconds=1.0)
    assert torch.equal(a.waveform, b.waveform) and not torch.equal(a.waveform, c.waveform)
    assert a.label == 3 and a.name.startswith("synthetic-") and len(a.waveform) == 8000
    assert a.waveform.abs().max() <= 0.5 + 1e-6 and torch.isfinite(a.waveform).all()
    assert len(SPECIES) == 10 and all(s.name.startswith("synthetic-") for s in SPECIES)


def test_synthetic_species_differ_in_spectrum():
    # The mean spectra of two species differ more than those of two birds of one species.
    def spectrum(species, seed):
        w = synthetic_recording(species, seed, sample_rate=16000, seconds=3.0, snr_db=20).waveform
        return torch.fft.rfft(w).abs()[:8000].reshape(80, 100).mean(1)

    same = torch.nn.functional.cosine_similarity(spectrum(6, 1), spectrum(6, 2), dim=0)
    other = torch.nn.functional.cosine_similarity(spectrum(6, 1), spectrum(8, 1), dim=0)
    assert same > other


def test_vote_accuracy():
    pred = torch.tensor([0, 0, 1, 1, 1, 0])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    assert vote_accuracy(pred, y, groups) == 100.0
    assert vote_accuracy(torch.tensor([1, 1, 1, 0, 0, 0]), y, groups) == 0.0
