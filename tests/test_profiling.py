"""profile_step splits a training step into parts of the network; macs_by_part splits its MACs alike."""

from __future__ import annotations

import pytest
import timm
import torch

import sret_mini
from sret_mini.profiling import PHASES, macs_by_part, network_parts, profile_step


@pytest.fixture(scope="module")
def nano_profile():
    torch.manual_seed(0)
    model = sret_mini.create_model("sret_nano")
    return profile_step(model, torch.randn(2, 3, 16, 16), torch.randint(0, 10, (2,)), steps=2, warmup=1)


def test_network_parts_name_every_stage_of_sret():
    parts = set(network_parts(sret_mini.create_model("sret_nano")).values())
    for stage in (1, 2, 3):
        assert {f"stage {stage} attention", f"stage {stage} MLP", f"stage {stage} NLL"} <= parts
    assert {"stem", "stage 2 pooling", "head"} <= parts
    assert "stage 1 pooling" not in parts  # the first stage's downsampling is an Identity


def test_network_parts_work_for_timm_vits():
    parts = set(network_parts(timm.create_model("deit_tiny_patch16_224")).values())
    assert parts == {"stem", "attention", "MLP", "norms, residuals", "head"}


def test_every_part_of_the_network_appears_in_the_profile(nano_profile):
    ran = nano_profile.by_part()
    expected = set(network_parts(sret_mini.create_model("sret_nano")).values()) | {"loss", "optimizer"}
    assert expected <= set(ran)


def test_the_profile_has_all_three_phases(nano_profile):
    assert {phase for _, phase in nano_profile.ms} == set(PHASES)
    assert all(nano_profile.phase_ms(phase) > 0 for phase in PHASES)


def test_backward_time_goes_to_the_parts_of_the_network(nano_profile):
    assert nano_profile.ms[("stage 1 attention", "backward")] > 0
    assert nano_profile.ms[("stage 1 NLL", "backward")] > 0


def test_times_are_non_negative_and_add_up_to_about_the_wall_clock_step():
    model = sret_mini.create_model("sret_nano")
    one = profile_step(model, torch.randn(2, 3, 16, 16), torch.randint(0, 10, (2,)), steps=1, warmup=1)
    assert all(t >= 0 for t in one.ms.values())
    assert one.total_ms == pytest.approx(sum(one.by_part().values()))
    # one step: its parts are the step's operators, inside the stopwatch around it
    assert 0.7 * one.wall_ms <= one.total_ms <= 1.05 * one.wall_ms


def test_a_part_gets_its_least_time_over_the_steps(nano_profile):
    assert nano_profile.total_ms <= 1.05 * nano_profile.wall_ms  # least times: no more than a typical step


def test_rows_give_one_line_per_part_and_the_shares_sum_to_one(nano_profile):
    rows = nano_profile.rows()
    assert [r[0] for r in rows] == [p for p in nano_profile.by_part() if p != "optimizer"] + ["optimizer"]
    assert sum(float(r[3].rstrip("%")) for r in rows) == pytest.approx(100, abs=len(rows))


def test_hooks_are_removed_after_profiling():
    model = sret_mini.create_model("sret_nano")
    profile_step(model, torch.randn(2, 3, 16, 16), torch.randint(0, 10, (2,)), steps=1, warmup=0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("name", ["sret_nano", "deit_tiny_patch16_224"])
def test_macs_by_part_add_up_to_count_macs(name):
    model = timm.create_model(name)
    size = 16 if name == "sret_nano" else 224
    by_part = macs_by_part(model, size)
    assert sum(by_part.values()) == sret_mini.count_macs(model, size)
    assert by_part.get("norms, residuals", 0) == 0 and by_part["attention" if "deit" in name else "stage 1 MLP"] > 0


def test_slicing_changes_the_attention_macs_only():
    sliced, plain = (
        macs_by_part(timm.create_model("sret_t"), 224),
        macs_by_part(timm.create_model("sret_t_noslice"), 224),
    )
    differ = {p for p in plain if plain[p] != sliced.get(p)}
    assert differ == {"stage 1 attention", "stage 2 attention"}
    assert sliced["stage 1 attention"] < plain["stage 1 attention"]
