"""Every float field of the frozen configs of ``seggpt_core`` and ``vos.config`` refuses nan, infinities and values out
of its range when the config is constructed (one line naming the field), and takes the edges of its range.

The table below must name every float field: ``test_every_float_field_is_checked`` finds them in the modules, so a new
field without a check fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil

import pytest

import seggpt_core
from seggpt_core.adaptation import AdaptConfig
from seggpt_core.errors import InputError
from seggpt_core.model import SegGPTConfig
from seggpt_core.training import TrainConfig
from seggpt_core.tuning import TuningConfig
from vos.config import EdgeConfig, MotionConfig, PropagationConfig, WindowConfig

NAN, INF = math.nan, math.inf
PROBABILITY = {"bad": [-0.1, 1.1], "good": [0.0, 1.0]}

#: (config, field) -> values out of range ("bad") and at the edges of the range ("good"). Scalar fields are also
#: tried with nan, inf and -inf; tuple fields list theirs.
FLOAT_FIELDS = {
    (SegGPTConfig, "mlp_ratio"): {"bad": [0.0, -1.0], "good": [0.5]},
    (SegGPTConfig, "layer_norm_eps"): {"bad": [0.0, -1e-6], "good": [1e-12]},
    (SegGPTConfig, "drop_path_rate"): {"bad": [-0.1, 1.0], "good": [0.0, 0.99]},
    (TrainConfig, "lr"): {"bad": [0.0, -1e-4], "good": [1e-9]},
    (TrainConfig, "min_lr"): {"bad": [-1e-5], "good": [0.0]},
    (TrainConfig, "weight_decay"): {"bad": [-0.05], "good": [0.0]},
    (TrainConfig, "betas"): {"bad": [(0.9, 1.0), (-0.1, 0.999), (NAN, 0.999), (0.9, INF), (0.9,)],
                             "good": [(0.0, 0.0), (0.9, 0.9999)]},
    (TrainConfig, "clip_grad"): {"bad": [-1.0], "good": [None, 0.0]},
    (TrainConfig, "half_mask_prob"): PROBABILITY,
    (TrainConfig, "mask_ratio"): PROBABILITY,
    (TrainConfig, "label_colours_prob"): PROBABILITY,
    (TrainConfig, "black_background_prob"): PROBABILITY,
    (TrainConfig, "mix_context_prob"): PROBABILITY,
    (TrainConfig, "prompt_noise_prob"): PROBABILITY,
    (TrainConfig, "min_colour_distance"): {"bad": [-1.0], "good": [0.0, 500.0]},
    (TuningConfig, "lr"): {"bad": [0.0, -0.05], "good": [1e-9, 100.0]},
    (TuningConfig, "crop_scale"): {"bad": [(0.0, 1.0), (0.8, 0.5), (0.5, 1.5), (NAN, 1.0), (0.5, INF)],
                                   "good": [(1.0, 1.0), (1e-3, 1.0)]},
    (WindowConfig, "margin"): {"bad": [0.0, -1.5], "good": [1e-3, 50.0]},
    (WindowConfig, "min_side"): {"bad": [0.0, 1.5], "good": [1.0]},
    (MotionConfig, "blend"): {"bad": [-0.1, 1.1], "good": [0.0, 1.0]},
    (MotionConfig, "recover"): {"bad": [-0.1, 1.1], "good": [0.0, 1.0]},
    (MotionConfig, "scale"): {"bad": [0.0, 1.5], "good": [1.0, 0.01]},
    (EdgeConfig, "radius"): {"bad": [-0.5, 64.5], "good": [0.0, 64.0]},
    (EdgeConfig, "contrast"): {"bad": [0.0, 255.5], "good": [1e-3, 255.0]},
    (PropagationConfig, "store_budget_mb"): {"bad": [-1.0], "good": [0.0, 1e6]},
    (AdaptConfig, "lr"): {"bad": [0.0, -1e-4], "good": [1e-9, 10.0]},
}
#: Configs whose constructor is the library's input check (the CLI prints it as one line, exit 2).
USER_FACING = (TuningConfig, WindowConfig, MotionConfig, EdgeConfig, PropagationConfig, AdaptConfig)


def cases(kind: str):
    for (config, name), values in FLOAT_FIELDS.items():
        scalar = not isinstance(getattr(config(), name), tuple)
        extra = [NAN, INF, -INF] if kind == "bad" and scalar else []
        for value in values[kind] + extra:
            yield pytest.param(config, name, value, id=f"{config.__name__}.{name}={value}")


@pytest.mark.parametrize("config, name, value", cases("bad"))
def test_out_of_range_float_is_refused_naming_the_field(config, name, value):
    error = InputError if config in USER_FACING else ValueError
    with pytest.raises(error, match=name.replace("_", "[ _]")) as raised:
        config(**{name: value})
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("config, name, value", cases("good"))
def test_edge_of_range_is_accepted(config, name, value):
    assert getattr(config(**{name: value}), name) == value


def frozen_configs():
    modules = [importlib.import_module(f"seggpt_core.{m.name}") for m in pkgutil.iter_modules(seggpt_core.__path__)]
    modules.append(importlib.import_module("vos.config"))
    for module in modules:
        for obj in vars(module).values():
            if (isinstance(obj, type) and obj.__module__ == module.__name__ and dataclasses.is_dataclass(obj)
                    and obj.__dataclass_params__.frozen):
                yield obj


def test_every_float_field_is_checked():
    found = {(config, f.name) for config in frozen_configs() for f in dataclasses.fields(config)
             if "float" in str(f.type)}
    assert {SegGPTConfig, TrainConfig, TuningConfig, WindowConfig} <= {c for c, _ in found}
    assert found == set(FLOAT_FIELDS)
