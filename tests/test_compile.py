"""torch.compile(fullgraph=True) traces the whole model on CPU, in training and in evaluation."""

import pytest
import torch

import sret_mini

# small enough to compile in well under a minute on two cores, with every feature of SReT:
# sliced and recursive attention, permutations, NLLs, pooling between stages, drop path
SMALL = dict(dims=(32, 64, 128), heads=(2, 2, 4), depth=(2, 2, 2), unique_blocks=(1, 1, 1),
             groups_first=(4, 2, 1), groups_recursive=(2, 1, 1), img_size=32, num_classes=5)  # fmt: skip


@pytest.mark.parametrize("shuffle", ["train", "random"])
def test_compiles_with_fullgraph_for_training_and_evaluation(shuffle):
    torch._dynamo.reset()
    model = sret_mini.SReT(**SMALL, shuffle=shuffle, drop_path_rate=0.1)
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(4, 3, 32, 32)

    model.train()
    loss = compiled(x).logsumexp(-1).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())

    model.eval()
    with torch.no_grad():
        out = compiled(x)
        if shuffle == "train":  # deterministic evaluation: compiled equals eager
            torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-5)
        else:
            assert out.shape == (4, 5) and torch.isfinite(out).all()
