"""DAVIS 2017 evaluation: published OSVOS scores, vos-benchmark on perturbed results, protocol edge cases, CSVs,
errors and the command line."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from eval.cli import main as eval_main
from eval.davis import evaluate_davis
from eval.errors import EvalError
from eval.sequence import Protocol
from tests.eval_helpers import (PERTURBATIONS, load_sequence, make_davis_root, read_png, vos_benchmark_per_frame,
                                write_png)


def test_osvos_matches_the_published_per_frame_scores(shared_data):
    published_file = shared_data / "davis-mini-osvos" / "official_site_osvos_perframe.json"
    published = json.loads(published_file.read_text())["objects"]
    report = evaluate_davis(shared_data / "davis-mini", shared_data / "davis-mini-osvos", workers=2)
    assert [o.name for o in report.objects] == list(published)
    for obj in report.objects:
        assert len(obj.j) == len(published[obj.name]["J"]) == len(obj.frames)
        assert [f"{v:.4f}" for v in obj.j] == published[obj.name]["J"], obj.name
        assert [f"{v:.4f}" for v in obj.f] == published[obj.name]["F"], obj.name
    assert report.protocol is Protocol.DAVIS_EXACT and "identical to the official" in report.describe_mode()


def test_sequences_score_named_clips_without_an_imagesets_file(shared_data, tmp_path, capsys):
    """--sequences: ground truth under Annotations/480p/NAME is all a root needs; the scores are the published ones."""
    published = json.loads((shared_data / "davis-mini-osvos" / "official_site_osvos_perframe.json").read_text())["objects"]
    root = tmp_path / "mine"
    for name in ("libby", "dog"):
        shutil.copytree(shared_data / "davis-mini" / "Annotations" / "480p" / name, root / "Annotations" / "480p" / name)
    common = ["eval", "--davis-root", str(root), "--results", str(shared_data / "davis-mini-osvos"), "--workers", "1",
              "--csv-dir", str(tmp_path / "csv")]
    assert eval_main([*common, "--sequences", "libby", "dog"]) == 0
    with open(tmp_path / "csv" / "per-sequence_results-val.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [r[0] for r in rows] == ["libby_1", "dog_1"]
    report = evaluate_davis(root, shared_data / "davis-mini-osvos", sequences=["dog"], workers=1)
    assert [f"{v:.4f}" for v in report.objects[0].j] == published["dog_1"]["J"]
    capsys.readouterr()
    assert eval_main([*common, "--sequences", "dog", "cat"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(root / "Annotations" / "480p" / "cat") in err and "--sequences" in err


@pytest.fixture(scope="module")
def small_root(shared_data, tmp_path_factory):
    """First 10 frames of two multi-object sequences (K = 3, 2) and one single-object sequence."""
    sequences = {"blackswan-x3": load_sequence(shared_data / "davis-mini-multi", "blackswan-x3", 10),
                 "libby-x2": load_sequence(shared_data / "davis-mini-multi", "libby-x2", 10),
                 "dog": load_sequence(shared_data / "davis-mini", "dog", 10)}
    return make_davis_root(tmp_path_factory.mktemp("davis-small"), sequences), sequences


@pytest.mark.parametrize("perturbation", sorted(PERTURBATIONS))
def test_perturbed_results_equal_vos_benchmark_exactly(small_root, tmp_path, perturbation):
    root, sequences = small_root
    for name, gts in sequences.items():
        k = int(gts[0].max())
        for t in range(1, len(gts) - 1):  # frames 0 and n-1 are never read: not writing them proves it
            write_png(tmp_path / name / f"{t:05d}.png", PERTURBATIONS[perturbation](gts[t], k))
    report = evaluate_davis(root, tmp_path, workers=1)
    assert [o.name for o in report.objects] == [f"{n}_{k}" for n, gts in sequences.items()
                                                for k in range(1, int(gts[0].max()) + 1)]
    for name, gts in sequences.items():
        preds = [read_png(tmp_path / name / f"{t:05d}.png") for t in range(1, len(gts) - 1)]
        reference = vos_benchmark_per_frame(gts[1:-1], preds)
        for obj in (o for o in report.objects if o.sequence == name):
            start, ref_j, ref_f = reference[obj.object_id]
            assert start == 0  # every object is in the first evaluated ground-truth frame
            assert obj.j.tolist() == ref_j and obj.f.tolist() == ref_f, obj.name
    if perturbation == "identity":
        assert report.overall.row() == (1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0)
    if perturbation == "empty":
        assert report.overall.jf_mean == 0.0


def test_workers_give_identical_numbers(small_root, tmp_path):
    root, sequences = small_root
    for name, gts in sequences.items():
        for t in range(1, len(gts) - 1):
            write_png(tmp_path / name / f"{t:05d}.png", PERTURBATIONS["noise"](gts[t], int(gts[0].max())))
    one, two = evaluate_davis(root, tmp_path, workers=1), evaluate_davis(root, tmp_path, workers=2)
    assert [(o.name, o.j.tolist(), o.f.tolist()) for o in one.objects] == \
        [(o.name, o.j.tolist(), o.f.tolist()) for o in two.objects]
    assert one.overall == two.overall


def test_globals_average_objects_not_sequences(small_root, tmp_path):
    root, sequences = small_root
    for name, gts in sequences.items():
        for t in range(1, len(gts) - 1):
            write_png(tmp_path / name / f"{t:05d}.png", PERTURBATIONS["drop_object"](gts[t], int(gts[0].max())))
    report = evaluate_davis(root, tmp_path, workers=1)
    per_object = [o.j_stats.mean for o in report.objects]
    per_sequence = [np.mean([o.j_stats.mean for o in report.objects if o.sequence == s]) for s in sequences]
    assert report.overall.j.mean == np.mean(per_object) != pytest.approx(np.mean(per_sequence))
    assert report.overall.jf_mean == (report.overall.j.mean + report.overall.f.mean) / 2
    assert [o.j_stats.mean for o in report.objects if o.object_id == int(sequences[o.sequence][0].max())] == [0, 0, 0]


def test_csvs_have_the_toolkit_names_columns_and_format(small_root, tmp_path):
    root, sequences = small_root
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    (results / "global_results-val.csv").write_text("stale\n")
    assert eval_main(["eval", "--davis-root", str(root), "--results", str(results), "--workers", "1"]) == 0
    with open(results / "global_results-val.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"],
                    ["1.000", "1.000", "1.000", "0.000", "1.000", "1.000", "0.000"]]
    with open(results / "per-sequence_results-val.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Sequence", "J-Mean", "F-Mean"]
    assert [r[0] for r in rows[1:]] == ["blackswan-x3_1", "blackswan-x3_2", "blackswan-x3_3", "libby-x2_1",
                                        "libby-x2_2", "dog_1"]
    assert all(r[1:] == ["1.000", "1.000"] for r in rows[1:])


def _cli_errors(capsys, root, results) -> str:
    code = eval_main(["eval", "--davis-root", str(root), "--results", str(results), "--workers", "1"])
    assert code == 2
    return capsys.readouterr().err


def test_bad_results_exit_2_naming_the_file_and_remove_stale_csvs(small_root, tmp_path, capsys):
    root, sequences = small_root
    gts = sequences["libby-x2"]

    def fresh_results():
        results = tmp_path / "results"
        shutil.rmtree(results, ignore_errors=True)
        shutil.copytree(root / "Annotations" / "480p", results)
        return results

    results = fresh_results()
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        (results / name).write_text("stale numbers\n")
    bad = gts[4].copy()
    bad[:5, :5] = 3  # libby-x2 has K = 2
    write_png(results / "libby-x2" / "00004.png", bad)
    err = _cli_errors(capsys, root, results)
    assert "libby-x2/00004.png" in err and "3" in err and "\n" == err[-1] and err.count("\n") == 1
    assert not (results / "global_results-val.csv").exists()  # never left beside changed results

    results = fresh_results()
    bad[:5, :5] = 255
    write_png(results / "libby-x2" / "00004.png", bad)
    assert "255 (void)" in _cli_errors(capsys, root, results)

    results = fresh_results()
    (results / "dog" / "00003.png").unlink()
    err = _cli_errors(capsys, root, results)
    assert "dog/00003.png is missing" in err

    results = fresh_results()
    from PIL import Image

    Image.fromarray(np.stack([gts[2]] * 3, axis=-1)).save(results / "libby-x2" / "00002.png")
    assert "libby-x2/00002.png is a RGB image" in _cli_errors(capsys, root, results)

    results = fresh_results()
    write_png(results / "dog" / "00005.png", gts[5][:240, :427])
    assert "dog/00005.png is 427x240" in _cli_errors(capsys, root, results)

    results = fresh_results()
    shutil.rmtree(results / "dog")
    assert "results/dog is missing" in _cli_errors(capsys, root, results)

    err = _cli_errors(capsys, tmp_path / "nowhere", results)
    assert "ImageSets/2017/val.txt is missing" in err


def test_seggpt_vos_cli_routes_eval_errors_to_exit_2(small_root, tmp_path, capsys):
    pytest.importorskip("vos.cli.commands", reason="vos.cli.commands is not written yet")
    from vos.cli import main

    root, _ = small_root
    assert main(["eval", "--davis-root", str(root), "--results", str(tmp_path / "none"), "--workers", "1"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_late_object_davis_exact_rejects_it_and_sparse_scores_it(shared_data, tmp_path):
    root = shared_data / "davis-edge-lateobj"
    gts = load_sequence(root, "dog-lateobj")
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    with pytest.raises(EvalError, match=r"dog-lateobj/00020\.png contains object id\(s\) 2"):
        evaluate_davis(root, results, workers=1)  # the toolkit: K = 1 from frame 0, exits 0 without a CSV

    sparse = evaluate_davis(root, results, protocol=Protocol.SPARSE, workers=1)
    assert [(o.name, len(o.frames)) for o in sparse.objects] == [("dog-lateobj_1", 58), ("dog-lateobj_2", 39)]
    assert "00020" not in sparse.objects[0].frames and sparse.objects[1].frames[0] == "00021"
    assert sparse.overall.row() == (1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0)

    for t, gt in enumerate(gts):  # a real prediction of both objects, checked against vos-benchmark
        write_png(results / "dog-lateobj" / f"{t:05d}.png", PERTURBATIONS["erode"](gt, 2))
    sparse = evaluate_davis(root, results, protocol=Protocol.SPARSE, workers=1)
    preds = [read_png(results / "dog-lateobj" / f"{t:05d}.png") for t in range(len(gts))]
    reference = vos_benchmark_per_frame(gts, preds)  # vos-benchmark without skipping first/last
    for obj in sparse.objects:
        start, ref_j, ref_f = reference[obj.object_id]
        for frame, j, f in zip(obj.frames, obj.j, obj.f):
            assert (j, f) == (ref_j[int(frame) - start], ref_f[int(frame) - start])

    for t, gt in enumerate(gts):  # without the late object, DAVIS-exact scores dog alone
        write_png(results / "dog-lateobj" / f"{t:05d}.png", np.where(gt == 2, 0, gt).astype(np.uint8))
    exact = evaluate_davis(root, results, workers=1)
    assert [(o.name, len(o.frames)) for o in exact.objects] == [("dog-lateobj_1", 58)]
    assert exact.overall.jf_mean == 1.0


def test_void_is_background_and_predicting_it_costs(shared_data, tmp_path):
    root = shared_data / "davis-edge-void"
    gts = load_sequence(root, "libby-void")
    results = tmp_path / "results"
    for t, gt in enumerate(gts):
        write_png(results / "libby-void" / f"{t:05d}.png", np.where(gt == 255, 0, gt).astype(np.uint8))
    assert evaluate_davis(root, results, workers=1).overall.jf_mean == 1.0
    for t, gt in enumerate(gts):  # predict the void ring as the object: false positives
        write_png(results / "libby-void" / f"{t:05d}.png", np.where(gt == 255, 1, gt).astype(np.uint8))
    report = evaluate_davis(root, results, workers=1)
    preds = [read_png(results / "libby-void" / f"{t:05d}.png") for t in range(1, len(gts) - 1)]
    start, ref_j, ref_f = vos_benchmark_per_frame(gts[1:-1], preds)[1]  # vos-benchmark: 255 is another object
    assert report.objects[0].j.tolist() == ref_j and report.objects[0].f.tolist() == ref_f
    assert report.overall.j.mean < 0.9


def test_decay_beyond_255_frames_is_correct_by_default_and_nan_in_compat_mode(tmp_path):
    gt = np.zeros((16, 24), np.uint8)
    gt[4:12, 6:18] = 1
    frames = 300
    root = make_davis_root(tmp_path / "root", {"long": [gt] * frames})
    for t in range(frames):
        pred = gt.copy() if t < 150 else np.zeros_like(gt)
        write_png(tmp_path / "results" / "long" / f"{t:05d}.png", pred)
    default = evaluate_davis(root, tmp_path / "results", workers=1)
    compat = evaluate_davis(root, tmp_path / "results", workers=1, davis_compat=True)
    assert default.objects[0].j_stats.decay == 1.0  # first quarter all 1, last quarter all 0
    assert np.isnan(compat.objects[0].j_stats.decay)
    assert "differs from the official toolkit" in default.describe_mode()
    assert default.objects[0].j_stats.mean == compat.objects[0].j_stats.mean


def test_cross_check_with_the_official_toolkit_when_installed(shared_data, tmp_path):
    evaluation = pytest.importorskip("davis2017.evaluation", reason="davis2017 (official toolkit) not installed")
    results = tmp_path / "osvos"
    shutil.copytree(shared_data / "davis-mini-osvos", results)
    official = evaluation.DAVISEvaluation(davis_root=str(shared_data / "davis-mini"), task="semi-supervised",
                                          gt_set="val").evaluate(str(results))
    ours = evaluate_davis(shared_data / "davis-mini", results, workers=1)
    assert official["J"]["M"] == [o.j_stats.mean for o in ours.objects]
    assert official["J"]["R"] == [o.j_stats.recall for o in ours.objects]
    assert official["J"]["D"] == [o.j_stats.decay for o in ours.objects]
    assert official["F"]["M"] == [o.f_stats.mean for o in ours.objects]
    assert official["F"]["D"] == [o.f_stats.decay for o in ours.objects]


def test_id_gaps_become_always_empty_objects_like_the_toolkit(tmp_path):
    gt = np.zeros((20, 30), np.uint8)
    gt[5:15, 5:20] = 3  # only id 3: the toolkit makes objects 1, 2 (never present) and 3
    root = make_davis_root(tmp_path / "root", {"gap": [gt] * 5})
    for t in range(5):
        write_png(tmp_path / "results" / "gap" / f"{t:05d}.png", np.zeros_like(gt))
    report = evaluate_davis(root, tmp_path / "results", workers=1)
    assert [(o.name, o.j_stats.mean, o.f_stats.mean) for o in report.objects] == \
        [("gap_1", 1.0, 1.0), ("gap_2", 1.0, 1.0), ("gap_3", 0.0, 0.0)]


def test_python_dash_m_eval_stands_alone(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "eval", "eval", "--davis-root", str(tmp_path), "--results",
                          str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "ImageSets/2017/val.txt is missing" in run.stderr
