"""Sliced group self-attention: groups, the permutation and its inverse."""

import math

import pytest
import torch

from sret_mini import SlicedGroupAttention, fixed_permutation


def grouped_attention_by_hand(attn: SlicedGroupAttention, x: torch.Tensor, groups: int) -> torch.Tensor:
    """Multi-head attention run separately on each contiguous slice of tokens, then projected."""
    b, n, c = x.shape
    h, d, size = attn.heads, c // attn.heads, n // groups
    q, k, v = attn.qkv(x).split(c, dim=-1)
    out = torch.zeros_like(q)
    for g in range(groups):
        t = slice(g * size, (g + 1) * size)
        for head in range(h):
            ch = slice(head * d, (head + 1) * d)
            scores = q[:, t, ch] @ k[:, t, ch].transpose(1, 2) / math.sqrt(d)
            out[:, t, ch] = scores.softmax(-1) @ v[:, t, ch]
    return attn.proj(out)


@pytest.mark.parametrize("groups", [1, 2, 4, 16])
def test_each_group_attends_only_inside_its_contiguous_slice(groups):
    attn = SlicedGroupAttention(dim=32, heads=4).eval()
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, groups), grouped_attention_by_hand(attn, x, groups))


def test_the_permutation_is_undone_exactly():
    attn = SlicedGroupAttention(dim=16, heads=2).eval()
    x = torch.randn(3, 48, 16)
    perm = torch.randperm(48)
    with torch.no_grad():
        out = attn(x, groups=4, perm=perm)
        # slicing the shuffled sequence, then reading the result in shuffled order, is the same thing
        assert torch.equal(out[:, perm], attn(x[:, perm], groups=4))


def test_permuted_groups_mix_tokens_from_different_slices():
    attn = SlicedGroupAttention(dim=16, heads=2).eval()
    x = torch.randn(1, 32, 16)
    perm = torch.randperm(32)
    with torch.no_grad():
        plain = attn(x, groups=2)
        shuffled = attn(x, groups=2, perm=perm)
    assert not torch.allclose(plain, shuffled)


def test_a_permutation_does_not_change_global_attention():
    attn = SlicedGroupAttention(dim=16, heads=2).eval()
    x = torch.randn(2, 30, 16)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, 1, torch.randperm(30)), attn(x, 1))


def test_fixed_permutation_is_a_deterministic_seeded_shuffle():
    p = fixed_permutation(784, seed=3)
    assert torch.equal(p.sort().values, torch.arange(784))  # a permutation
    assert torch.equal(p, fixed_permutation(784, seed=3))  # the same every time
    assert not torch.equal(p, fixed_permutation(784, seed=4))  # depends on the seed
    assert (p != torch.arange(784)).float().mean() > 0.9  # and really shuffles


def test_fixed_permutation_does_not_touch_the_global_rng():
    state = torch.get_rng_state()
    fixed_permutation(100, seed=0)
    assert torch.equal(state, torch.get_rng_state())


def test_attention_dropout_only_in_training():
    attn = SlicedGroupAttention(dim=16, heads=2, attn_drop=0.5)
    x = torch.randn(2, 16, 16)
    attn.eval()
    with torch.no_grad():
        assert torch.equal(attn(x, 2), attn(x, 2))
    attn.train()
    with torch.no_grad():
        assert not torch.equal(attn(x, 2), attn(x, 2))
