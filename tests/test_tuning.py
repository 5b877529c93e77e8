"""In-context tuning: the prompt learns while the model stays frozen, prompt files round-trip and refuse other models,
interrupted runs resume exactly, and tuned prompts plug into segment/propagate (checked against the image API)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from seggpt_core.errors import InputError
from seggpt_core.model import PRESETS, SegGPT
from seggpt_core.predictor import Prompt, SegGPTPredictor
from seggpt_core.tuned_prompt import TunedPrompt
from seggpt_core.tuning import TuningConfig, TuningSet, tune_prompt, tuning_loss
from vos.cli import main
from vos.session import PropagationConfig, VideoSession


def tiny_predictor(seed: int = 0, config=PRESETS["test-tiny"]) -> SegGPTPredictor:
    torch.manual_seed(seed)
    return SegGPTPredictor(SegGPT(config), device="cpu", dtype="fp32")


def examples(n: int = 3) -> list[Prompt]:
    """Random images with two moving rectangles labelled 1 and 2."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        labels = np.zeros((40, 50), np.uint8)
        labels[5 + 2 * i:20 + 2 * i, 8:28] = 1
        labels[24:36, 30 - i:46 - i] = 2
        out.append(Prompt(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), labels))
    return out


def set_loss(predictor: SegGPTPredictor, image: torch.Tensor, target: torch.Tensor, data: TuningSet) -> float:
    with torch.no_grad():
        return float(tuning_loss(predictor, image, target, data.images, data.targets(data.labels)))


def test_tuning_lowers_the_loss_and_leaves_the_model_unchanged():
    predictor = tiny_predictor()
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    ex = examples()
    data = TuningSet(predictor, ex)
    init_image = predictor.prepare_image(ex[0].image)
    init_target = data.targets(data.labels[:1])[0]
    prompt = tune_prompt(predictor, ex, TuningConfig(steps=15, lr=0.2, augment=False, tune_target=True),
                         progress=False)
    start, end = set_loss(predictor, init_image, init_target, data), set_loss(predictor, prompt.image, prompt.target,
                                                                                data)
    assert end < start - 1e-4
    assert not torch.equal(prompt.image, init_image) and not torch.equal(prompt.target, init_target)
    after = predictor.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in predictor.model.parameters())
    assert prompt.label_ids == (1, 2) and prompt.info["steps"] == 15


def test_image_only_tuning_keeps_the_target_and_a_valid_image():
    predictor = tiny_predictor()
    ex = examples()
    prompt = tune_prompt(predictor, ex, TuningConfig(steps=3, lr=5.0), progress=False)  # huge steps hit the clamp
    data = TuningSet(predictor, ex)
    assert torch.equal(prompt.target, data.targets(data.labels[:1])[0])
    rgb = prompt.image * torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(
        3, 1, 1)
    assert rgb.min() >= -1e-6 and rgb.max() <= 1 + 1e-6


def test_save_load_round_trip_and_model_checks(tmp_path):
    predictor = tiny_predictor()
    prompt = tune_prompt(predictor, examples(2), TuningConfig(steps=2), label_ids=[3, 7], progress=False)
    path = prompt.save(tmp_path / "prompt.pt")
    loaded = TunedPrompt.load(path)
    assert torch.equal(loaded.image, prompt.image) and torch.equal(loaded.target, prompt.target)
    assert loaded.label_ids == (3, 7) and loaded.model_config == prompt.model_config
    assert loaded.info == prompt.info
    loaded.check_model(predictor.model)  # the same model passes
    other_config = replace(PRESETS["test-tiny"], depth=5, tap_indices=(2, 3, 4))
    with pytest.raises(InputError, match="another model configuration.*depth 6 vs 5"):
        loaded.check_model(tiny_predictor(config=other_config).model)
    with pytest.raises(InputError, match="other weights"):
        loaded.check_model(tiny_predictor(seed=1).model)
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not a tuned prompt file"):
        TunedPrompt.load(tmp_path / "junk.pt")


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    predictor = tiny_predictor()
    ex = examples(5)
    config = TuningConfig(steps=6, lr=0.1, batch_size=2, seed=3, tune_target=True, save_every=4)
    reference = tune_prompt(predictor, ex, config, progress=False)

    def interrupt(step: int, loss: float) -> None:
        if step == 3:  # between periodic checkpoints: the interrupt handler saves this exact step
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.resume"
    with pytest.raises(KeyboardInterrupt):
        tune_prompt(predictor, ex, config, checkpoint=ckpt, progress=False, on_step=interrupt)
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    resumed = tune_prompt(predictor, ex, config, checkpoint=ckpt, resume=True, progress=False)
    assert torch.equal(resumed.image, reference.image) and torch.equal(resumed.target, reference.target)
    assert resumed.info["final_loss"] == reference.info["final_loss"]
    with pytest.raises(InputError, match="another run|other images, masks, settings"):
        tune_prompt(predictor, ex, replace(config, seed=4), checkpoint=ckpt, resume=True, progress=False)


def test_tuned_prompt_alone_propagates_like_the_image_api():
    """Context 0 and no mask: every frame is painted from the tuned prompt alone, so the session's labels must equal
    ``segment`` with that prompt, mapped to the prompt's ids."""
    predictor = tiny_predictor()
    ex = examples(4)
    prompt = tune_prompt(predictor, ex, TuningConfig(steps=2), label_ids=[4, 9], progress=False)
    session = VideoSession(predictor, [e.image for e in ex], PropagationConfig(context=0))
    session.add_prompt(prompt)
    assert session.mode == "joint"  # "auto" picks whole frames for a tuned prompt, even with this tiny model
    predictions = list(session.propagate())
    expected = predictor.segment([], [e.image for e in ex], tuned=[prompt])
    ids = np.array([0, 4, 9], np.uint8)
    for pred, labels in zip(predictions, expected):
        np.testing.assert_array_equal(pred.labels, ids[labels])
    assert set(np.unique(np.concatenate([p.labels for p in predictions]))) <= {0, 4, 9}


def test_session_refuses_masks_with_objects_the_prompt_lacks():
    predictor = tiny_predictor()
    ex = examples(2)
    prompt = tune_prompt(predictor, ex, TuningConfig(steps=1), progress=False)  # ids 1, 2
    session = VideoSession(predictor, [e.image for e in ex])
    session.add_prompt(prompt)
    with pytest.raises(InputError, match=r"object id\(s\) \[3\]"):
        session.add_mask(0, np.where(ex[0].labels == 2, 3, ex[0].labels).astype(np.uint8))
    for mode in ("per-object", "windows"):
        session = VideoSession(predictor, [e.image for e in ex], PropagationConfig(mode=mode))
        with pytest.raises(InputError, match="--mode joint"):
            session.add_prompt(prompt)


@pytest.fixture(scope="module")
def dog(davis_subset):
    return davis_subset("davis-mini", {"dog": 4})


def test_cli_tune_then_propagate_and_segment(dog, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "dog.pt"
    base = ["--model", str(tiny_checkpoint), "--dtype", "fp32"]
    assert main(["tune", "--davis-root", str(dog), "--sequence", "dog", "--frames", "0", "2", "--steps", "3",
                 "--out", str(out), *base]) == 0
    assert "loss" in capsys.readouterr().out
    assert out.is_file() and not (tmp_path / "dog.pt.resume").exists()
    assert TunedPrompt.load(out).label_ids == (1,)
    frames = dog / "JPEGImages/480p/dog"
    assert main(["propagate", str(frames), "--tuned-prompt", str(out), "--out", str(tmp_path / "alone"), *base]) == 0
    assert main(["propagate", str(frames), "--masks", str(dog / "Annotations/480p/dog/00000.png"), "--tuned-prompt",
                 str(out), "--out", str(tmp_path / "both"), *base]) == 0
    for folder in ("alone", "both"):
        assert sorted(p.stem for p in (tmp_path / folder / "dog").glob("*.png")) == ["00000", "00001", "00002",
                                                                                    "00003"]
    assert main(["segment", "--tuned-prompt", str(out), "--input", str(frames / "00003.jpg"), "--output",
                 str(tmp_path / "seg"), *base]) == 0
    assert Image.open(tmp_path / "seg/00003.png").size == (854, 480)


@pytest.mark.parametrize("case", ["counts", "sizes", "zero_steps", "other_config", "not_a_prompt", "no_example",
                                  "frame_range"])
def test_cli_bad_input_is_one_line_and_exit_2(dog, tiny_checkpoint, tmp_path, capsys, case):
    frames, masks = dog / "JPEGImages/480p/dog", dog / "Annotations/480p/dog"
    model = ["--model", str(tiny_checkpoint), "--dtype", "fp32"]
    tune = ["tune", "--out", str(tmp_path / "p.pt"), "--steps", "2", *model]
    if case == "counts":
        args = tune + ["--images", str(frames / "00000.jpg"), str(frames / "00001.jpg"), "--masks",
                       str(masks / "00000.png")]
    elif case == "sizes":
        Image.fromarray(np.ones((10, 10), np.uint8)).save(tmp_path / "small.png")
        args = tune + ["--images", str(frames / "00000.jpg"), "--masks", str(tmp_path / "small.png")]
    elif case == "zero_steps":
        args = tune + ["--images", str(frames / "00000.jpg"), "--masks", str(masks / "00000.png"), "--steps", "0"]
    elif case == "other_config":
        torch.manual_seed(0)
        other = SegGPT(replace(PRESETS["test-tiny"], embed_dim=32)).save_pretrained(tmp_path / "other")
        assert main(["tune", "--out", str(tmp_path / "p.pt"), "--steps", "1", "--model", str(other),
                     "--images", str(frames / "00000.jpg"), "--masks", str(masks / "00000.png")]) == 0
        capsys.readouterr()
        args = ["propagate", str(frames), "--tuned-prompt", str(tmp_path / "p.pt"), "--out", str(tmp_path / "o"),
                *model]
    elif case == "not_a_prompt":
        args = ["segment", "--tuned-prompt", str(masks / "00000.png"), "--input", str(frames / "00000.jpg"),
                "--output", str(tmp_path / "o"), *model]
    elif case == "no_example":
        args = ["propagate", str(frames), "--out", str(tmp_path / "o"), *model]
    else:
        args = tune + ["--davis-root", str(dog), "--sequence", "dog", "--frames", "0", "9"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seggpt-vos ") and "error:" in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["propagate", "frames"], ["segment", "--input", "a.jpg", "--output", "o"],
                                     ["run-davis", "--root", "d", "--out", "o"]])
def test_tuned_prompts_have_their_own_flag(command, capsys):
    """``--prompt`` is gone: a tuned-prompt file is ``--tuned-prompt``, an example image is ``--prompt-image``."""
    assert main([*command, "--prompt", "p.pt"]) == 2
    assert "--prompt" in capsys.readouterr().err
    assert main([command[0], "--help"]) == 0
    assert "--tuned-prompt PT" in capsys.readouterr().out
