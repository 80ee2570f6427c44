"""Sample sets drawn in seeded batches (dpm.chain.sampling.sample_batch) and their reassembly from
shards (pipeline.parzen.gather); the reverse chain drawn bit for bit as before it was one loop."""

import dataclasses
import functools
import math

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from dpm import synthetic
from dpm.base import config as cfg, registry
from dpm.chain import sampling
from dpm.core import model as models
from dpm.core.diffusion import GaussianDiffusion
from dpm.core.model import DiffusionModel
from dpm.chain.posterior import BernoulliEvidence, Denoise, Inpaint, posterior_sample
from dpm.base.registry import ParzenConfig
from dpm.chain.sampling import sample_batch
from dpm.core.schedules import FixedSchedule
from dpm.base import stages
from pipeline import parzen
from pipeline.parzen_samples import write_shard


class ZeroNet(torch.nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x), torch.zeros_like(x)


def zero_model(n_steps=10):
    """Zero coefficients in the authors' form: the reverse step is the forward kernel, the exact
    reverse process of N(0, I) data, so samples are N(0, I)."""
    return DiffusionModel(FixedSchedule(n_steps, 0.01), ZeroNet(),
                          functools.partial(GaussianDiffusion, parameterisation="kernel"))


def test_a_batch_is_the_same_whichever_order_the_batches_are_drawn_in():
    model = zero_model()
    forward = [sample_batch(model, b, 10, 4, 3, seed=5) for b in range(3)]
    backward = [sample_batch(model, b, 10, 4, 3, seed=5) for b in reversed(range(3))][::-1]
    for a, b in zip(forward, backward):
        assert torch.equal(a, b)
    assert [len(x) for x in forward] == [4, 4, 2]
    assert not torch.equal(forward[0], forward[1][:4])
    assert not torch.equal(forward[0], sample_batch(model, 0, 10, 4, 3, seed=6))


def parzen_params(n_samples=10, batch_size=4, seed=2) -> ParzenConfig:
    return ParzenConfig(n_samples=n_samples, batch_size=batch_size, seed=seed, n_centres=1, validation_start=0,
                        n_validation=1)


def test_a_batch_outside_the_set_is_an_error():
    assert parzen_params(10, 4).n_batches() == 3 and parzen_params(8, 4).n_batches() == 2
    assert [parzen_params(10, 4).batch_rows(b) for b in range(3)] == [4, 4, 2]
    assert [parzen_params(8, 4).batch_rows(b) for b in range(2)] == [4, 4]
    with pytest.raises(ValueError, match="batch 3 is outside the set of 10 samples drawn 4 at a time"):
        sample_batch(zero_model(), 3, 10, 4, 3, seed=0)
    with pytest.raises(ValueError, match="batch -1 is outside"):
        sample_batch(zero_model(), -1, 10, 4, 3, seed=0)


def test_batched_samples_follow_the_model():
    x = torch.cat([sample_batch(zero_model(), b, 20000, 5000, 2, seed=0) for b in range(4)]).double()
    assert torch.all(x.mean(0).abs() < 5 * (1 / len(x)) ** 0.5)
    assert torch.all((x.var(0) - 1).abs() < 5 * (2 / len(x)) ** 0.5)


PARAMS = parzen_params()


def shards(folder, n_shards, params=PARAMS):
    """The set 0..9 (row value = sample index) split as the parzen_samples stage splits it."""
    paths = []
    for k in range(n_shards):
        # written out, not by params.n_batches() and batch_rows(), which gather itself uses
        batches = list(range(k, math.ceil(params.n_samples / params.batch_size), n_shards))
        rows = [i for b in batches for i in range(b * params.batch_size, min((b + 1) * params.batch_size, params.n_samples))]
        record = {"n_samples": params.n_samples, "batch_size": params.batch_size, "seed": params.seed, "T": 5,
                  "seconds_this_run": 1.0, "device": "cpu"}
        paths.append(folder / f"shard{k}.npz")
        write_shard(paths[-1], np.asarray(rows, dtype=np.float32)[:, None], batches, record)
    return paths


@pytest.mark.parametrize("n_shards", [1, 2, 3])
def test_gather_reassembles_the_set_in_order_from_any_number_of_shards(tmp_path, n_shards):
    samples, records = parzen.gather(shards(tmp_path, n_shards)[::-1], PARAMS)
    assert samples[:, 0].tolist() == list(range(10)) and len(records) == n_shards


def test_gather_names_a_missing_batch_a_repeated_one_and_other_params(tmp_path):
    paths = shards(tmp_path, 3)
    with pytest.raises(stages.StageError, match=r"batches \[1\] are in no shard"):
        parzen.gather([paths[0], paths[2]], PARAMS)
    with pytest.raises(stages.StageError, match="batch 0 is also in another shard"):
        parzen.gather([paths[0], paths[0], paths[1], paths[2]], PARAMS)
    with pytest.raises(stages.StageError, match="rerun its parzen_samples stage"):
        parzen.gather(paths, dataclasses.replace(PARAMS, seed=3))
    with pytest.raises(stages.StageError, match="missing"):
        parzen.gather([tmp_path / "nowhere.npz"], PARAMS)


def test_gather_names_a_shard_with_too_few_or_too_many_samples(tmp_path):
    paths = shards(tmp_path, 2)
    for change in (lambda pixels: pixels[:-1], lambda pixels: np.concatenate([pixels, pixels[:1]])):
        with np.load(paths[0], allow_pickle=False) as npz:
            parts = {key: npz[key] for key in npz.files}
        broken = tmp_path / "broken.npz"
        np.savez(broken, **{**parts, "pixels": change(parts["pixels"])})
        with pytest.raises(stages.StageError, match=r"broken.npz: \d+ samples for its 2 batches, which hold 6"):
            parzen.gather([broken, paths[1]], PARAMS)


def test_finished_batches_are_kept_for_the_same_fingerprint_and_dropped_for_another(tmp_path):
    from pipeline.parzen_samples import _resume_dir
    folder = _resume_dir(tmp_path / "resume", "key-a")
    (folder / "batch_000000.npy").write_bytes(b"done")
    assert (_resume_dir(tmp_path / "resume", "key-a") / "batch_000000.npy").exists()
    assert not (_resume_dir(tmp_path / "resume", "key-b") / "batch_000000.npy").exists()
    assert (folder / "fingerprint").read_text().strip() == "key-b"


# --- The reverse chain drawn bit for bit as before it was one loop (dpm.chain.posterior) ---

CHAINS_REFERENCE = Path(__file__).parent / "data" / "reverse_chains.pt"
"""What ``draw_chains`` gave when the sampler and the posterior chain (dpm/chain/) each held a loop of their
own (commit 3e03d21, torch 2.13.0+cpu, an x86-64 CPU, ``CHAINS_THREADS`` threads). Redraw it (``python -m tests.test_sampling``)
only for a change meant to change the samples: then every stored sample and figure changes too."""

CHAINS_THREADS = 2
"""The threads the reference was drawn with: a convolution splits its sums by thread, so the image
model's last bits depend on their number (1 thread moves the bark chains; 2 and 3 give the same)."""


def perturbed_smoke_model(name: str) -> tuple[DiffusionModel, int]:
    """The smoke profile's model of ``name`` with every weight moved by N(0, 0.3²) noise (seeded), so
    that the network, not only the forward kernel, shapes each reverse step; and its D."""
    section = cfg.load_profile("smoke").section(name)
    info = synthetic.data_info(name, section)
    model = models.build(registry.get(name).model, section, info, seed=0)
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))
    return model, info.n_dims


def draw_chains() -> dict[str, Tensor]:
    """Unconditional samples (sampled and mean final step, seeded batches, and the generator's next
    draw after a chain: no extra draws) and one posterior per process, of a Gaussian swiss roll, the
    binomial heartbeat and a Gaussian image model; with ``CHAINS_THREADS`` threads, whatever an
    earlier test in this process set."""
    threads = torch.get_num_threads()
    torch.set_num_threads(CHAINS_THREADS)
    try:
        return _draw_chains()
    finally:
        torch.set_num_threads(threads)


def _draw_chains() -> dict[str, Tensor]:
    chains = {}
    for name, n, condition in [("swiss_roll", 16, lambda n_dims: Denoise(torch.linspace(-1.5, 1.5, n_dims), 1.0)),
                               ("heartbeat", 8, lambda n_dims: BernoulliEvidence(torch.linspace(0.1, 0.9, n_dims))),
                               ("bark", 2, lambda n_dims: Inpaint(torch.arange(n_dims) % 3 == 0,
                                                                  torch.linspace(-1, 1, n_dims)))]:
        model, n_dims = perturbed_smoke_model(name)
        generator = torch.Generator().manual_seed(7)
        chains[f"{name}/sample"] = sampling.sample(model, (n, n_dims), generator)
        chains[f"{name}/next_draw"] = torch.randn(3, generator=generator)
        chains[f"{name}/batch"] = sample_batch(model, 1, 2 * n, n, n_dims, seed=5)
        if name != "heartbeat":
            chains[f"{name}/batch_mean"] = sample_batch(model, 1, 2 * n, n, n_dims, seed=5, final_mean=True)
        chains[f"{name}/posterior"] = posterior_sample(model, condition(n_dims), (n, n_dims),
                                                       torch.Generator().manual_seed(13))
    return chains


def test_the_chains_are_drawn_bit_for_bit_as_by_the_two_loops_before():
    """One loop with r ≡ 1 draws the same random numbers in the same order and does the same
    float operations as the unconditional loop did (the last step by ``q_step`` itself: through
    ``tied_params`` the image model's samples would differ in the last bits)."""
    reference = torch.load(CHAINS_REFERENCE, weights_only=True)
    chains = draw_chains()
    assert chains.keys() == reference.keys()
    for key, x in chains.items():
        assert torch.equal(x.view(torch.int32), reference[key].view(torch.int32)), key  # NaNs and −0 too


if __name__ == "__main__":
    CHAINS_REFERENCE.parent.mkdir(exist_ok=True)
    torch.save(draw_chains(), CHAINS_REFERENCE)
