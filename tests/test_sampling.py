"""Sample sets drawn in seeded batches (dpm.chain.sampling.sample_batch) and their reassembly from
shards (pipeline.parzen.gather)."""

import dataclasses
import functools
import math

import numpy as np
import pytest
import torch

from dpm.core.diffusion import GaussianDiffusion
from dpm.core.model import DiffusionModel
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
