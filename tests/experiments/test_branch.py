"""experiments.branch: variants of a recipe's later phases, resumed from one shared trunk."""

import jax
import numpy as np
import pytest

from experiments import branch, train
from experiments.configs import dec


def _params(trained):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(trained.state.params)]


def test_the_unchanged_branch_ends_bit_identical_to_a_straight_run(tmp_path):
    config = dec.get_config("smoke,max_steps_per_phase=6,log_every=4")
    straight = train.train_recipe(config.copy_and_resolve_references(), tmp_path / "straight")
    runs = branch.branch(config, "pretrain", {"as is": "", "faster": "cluster_lr=0.01"},
                         tmp_path / "b")
    assert int(runs["trunk"].state.step) == 6 and int(runs["as is"].state.step) == 12
    for a, b in zip(_params(straight), _params(runs["as is"]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(_params(straight), _params(runs["faster"])))
    # A second call reuses the trunk's checkpoint: nothing past the branch point leaks into it.
    again = branch.branch(config, "pretrain", {"as is": ""}, tmp_path / "b")
    assert int(again["trunk"].state.step) == 6
    for a, b in zip(_params(runs["as is"]), _params(again["as is"]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_variant_may_not_change_the_trunk(tmp_path):
    config = dec.get_config("smoke,max_steps_per_phase=6")
    with pytest.raises(ValueError, match="changes the phases up to 'pretrain'"):
        branch.branch(config, "pretrain", {"shorter": "max_steps_per_phase=3"}, tmp_path / "a")
    with pytest.raises(ValueError, match="at='cluster' must name one of the phases before"):
        branch.branch(config, "cluster", {}, tmp_path / "b")


def test_parse_variants():
    assert branch.parse_variants("a=x=1,y=2; b=z=3") == {"as is": "", "a": "x=1,y=2", "b": "z=3"}
    assert branch.parse_variants("") == {"as is": ""}
    with pytest.raises(ValueError, match="name=key=value"):
        branch.parse_variants("a")
    with pytest.raises(ValueError, match="twice"):
        branch.parse_variants("a=x=1;a=x=2")
