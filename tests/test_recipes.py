"""Recipes as data: the shipped YAML recipes are the demo's and ``obliviate unlearn``'s
defaults, value for value, and a recipe file with a wrong key or value is refused in one
line naming the file and key."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig
from obliviate.train.recipes import (
    MethodRecipe,
    Recipe,
    available_recipes,
    load_recipe,
    recipe_from_file,
)

SMOLLM2 = Recipe(
    finetune=TrainConfig(epochs=7, lr=2e-4, batch_size=16, warmup_ratio=0.05, group_by_length=True),
    unlearn=TrainConfig(epochs=8, lr=2e-5, batch_size=8, scheduler="constant", min_steps=32),
    replay=True,
    default_method="grad_diff",
    known_method="rmu",
    methods={
        "grad_diff": MethodRecipe(params={"retain_weight": 3.0}),
        "rmu": MethodRecipe(train={"lr": 5e-4}),
    },
)
TINY = Recipe(
    finetune=TrainConfig(epochs=30, lr=3e-3, batch_size=16, warmup_ratio=0.05, precision="fp32"),
    unlearn=TrainConfig(epochs=5, lr=5e-4, batch_size=8, precision="fp32", min_steps=32),
    replay=False,
    default_method="grad_diff",
    methods={
        method: MethodRecipe(train={"lr": lr})
        for method, lr in (
            ("ga", 2e-4),
            ("ceu", 1e-4),
            ("satimp", 2e-3),
            ("rmu", 3e-3),
            ("dpo_idk", 2e-3),
        )
    },
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_are_smollm2_and_tiny() -> None:
    assert available_recipes() == ["smollm2", "tiny"]


def test_smollm2_recipe_is_the_demos() -> None:
    assert load_recipe("smollm2") == SMOLLM2


def test_tiny_recipe_is_the_demos() -> None:
    assert load_recipe("tiny") == TINY


def test_the_demo_schedules_are_unchanged() -> None:
    """The demo unlearns with the recipe's epochs alone (min_steps 0): the schedule its
    figures were measured with (smollm2: 8 epochs at lr 2e-5, batch 8, constant)."""
    assert replace(load_recipe("smollm2").unlearn, min_steps=0) == TrainConfig(
        epochs=8, lr=2e-5, batch_size=8, scheduler="constant"
    )
    assert replace(load_recipe("tiny").unlearn, min_steps=0) == TrainConfig(
        epochs=5, lr=5e-4, batch_size=8, precision="fp32"
    )
    assert load_recipe("smollm2").method_params("grad_diff") == {"retain_weight": 3.0}


def test_a_methods_entry_goes_over_the_shared_schedule() -> None:
    recipe = load_recipe("smollm2")
    assert recipe.unlearn_config("rmu") == replace(recipe.unlearn, lr=5e-4)
    assert recipe.unlearn_config("npo") == recipe.unlearn
    assert recipe.method_params("npo") == {}


def test_a_model_without_a_recipe_gets_smollm2s() -> None:
    assert load_recipe("runs/my-model") == SMOLLM2
    assert load_recipe("HuggingFaceTB/SmolLM2-360M-Instruct") == SMOLLM2


def test_recipes_serialise_as_the_python_ones_did() -> None:
    """Whole numbers stay ints (``epochs: 7``, not 7.0): the fine-tune cache and the
    manifests key on the values' JSON."""
    for name, expected in (("smollm2", SMOLLM2), ("tiny", TINY)):
        loaded = load_recipe(name)
        for part in ("finetune", "unlearn"):
            assert json.dumps(asdict(getattr(loaded, part))) == json.dumps(
                asdict(getattr(expected, part))
            )


def test_a_number_in_exponent_spelling_loads_as_a_number(tmp_path: Path) -> None:
    """PyYAML reads ``2e-4`` (no dot) as a string; the recipe reads it as the number."""
    recipe = recipe_from_file(
        write(
            tmp_path,
            "finetune: {lr: 2e-4, max_steps: 1e3, weight_decay: '0.01'}\n"
            "unlearn: {epochs: 2.5}\nreplay: false\n",
        )
    )
    assert recipe.finetune.lr == 2e-4
    assert isinstance(recipe.finetune.lr, float)
    assert recipe.finetune.max_steps == 1000
    assert isinstance(recipe.finetune.max_steps, int)
    assert recipe.finetune.weight_decay == 0.01
    assert recipe.unlearn.epochs == 2.5
    assert recipe.methods == {}
    assert recipe.default_method == "grad_diff"
    assert recipe.method_for_known == "grad_diff"  # no known_method: the default one


def test_known_method_is_the_method_for_knowledge_from_pretraining(tmp_path: Path) -> None:
    recipe = recipe_from_file(
        write(tmp_path, "finetune: {}\nunlearn: {}\nreplay: true\nknown_method: rmu\n")
    )
    assert (recipe.default_method, recipe.method_for_known) == ("grad_diff", "rmu")
    assert load_recipe("smollm2").method_for_known == "rmu"


def test_a_users_file_equal_to_a_shipped_one_loads_the_same(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/obliviate/recipes/tiny.yaml").read_text()
    assert recipe_from_file(write(tmp_path, text)) == TINY


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("finetune: {lrr: 2e-4}\nunlearn: {}\nreplay: true\n", "finetune.lrr"),
        ("finetune: {}\nunlearn: {}\nreplay: true\nreplays: 1\n", "replays"),
        ("finetune: {}\nunlearn: {}\nreplay: true\nmethods: {npo: {params: {bta: 1}}}\n", "bta"),
        ("finetune: {}\nunlearn: {}\nreplay: true\nmethods: {nop: {}}\n", "nop"),
        (
            "finetune: {}\nunlearn: {}\nreplay: true\nmethods: {npo: {trian: {}}}\n",
            "methods.npo.trian",
        ),
        (
            "finetune: {}\nunlearn: {}\nreplay: true\nmethods: {rmu: {train: {lrr: 1}}}\n",
            "methods.rmu.train.lrr",
        ),
        ("finetune: {}\nunlearn: {}\nreplay: true\ndefault_method: npoo\n", "npoo"),
        ("finetune: {}\nunlearn: {}\nreplay: true\nknown_method: rmuu\n", "rmuu"),
        ("finetune: {}\nunlearn: {}\nreplay: true\nmethod_params: {}\n", "method_params"),
    ],
)
def test_an_unknown_key_is_refused_in_one_line(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ObliviateError) as error:
        recipe_from_file(path)
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"'{key}'" in message


@pytest.mark.parametrize(
    ("text", "key", "wanted"),
    [
        ("finetune: {lr: fast}\nunlearn: {}\nreplay: true\n", "finetune.lr", "a number"),
        ("finetune: {}\nunlearn: {batch_size: 8.5}\nreplay: true\n", "unlearn.batch_size", "whole"),
        ("finetune: {lora: 1}\nunlearn: {}\nreplay: true\n", "finetune.lora", "true or false"),
        ("finetune: {scheduler: 3}\nunlearn: {}\nreplay: true\n", "finetune.scheduler", "string"),
        ("finetune: {lr: .inf}\nunlearn: {}\nreplay: true\n", "finetune.lr", "a number"),
        ("finetune: {}\nunlearn: {}\nreplay: maybe\n", "replay", "true or false"),
        ("finetune: [7]\nunlearn: {}\nreplay: true\n", "finetune", "mapping"),
    ],
)
def test_a_wrong_type_is_refused_in_one_line(
    tmp_path: Path, text: str, key: str, wanted: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ObliviateError) as error:
        recipe_from_file(path)
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"{key} must be" in message
    assert wanted in message


def test_a_value_trainconfig_refuses_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "finetune: {}\nunlearn: {precision: fp8}\nreplay: true\n")
    with pytest.raises(ObliviateError, match=r"mine\.yaml, unlearn: --precision must be"):
        recipe_from_file(path)


def test_a_recipe_must_say_whether_to_replay(tmp_path: Path) -> None:
    with pytest.raises(ObliviateError, match="lacks 'replay'"):
        recipe_from_file(write(tmp_path, "finetune: {}\nunlearn: {}\n"))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ObliviateError, match="does not exist"):
        recipe_from_file(tmp_path / "none.yaml")
