"""Precision, decided in one place each and recorded: the network is autocast (``amp``) in training
steps only, never in an evaluation (dpm/core/model.py); TF32 on CUDA is what params.yaml's ``tf32``
says, full float32 by default and always for the Parzen estimate (dpm/base/device.py); every metrics
and model file records the versions and the precision in force (``dpm.base.device.environment``).

There is no GPU here: CUDA is faked (``torch.cuda.is_available``) where a device must resolve to
it, the model's CUDA decision (``autocast_dtype("cuda")``) is read directly, and autocast itself
is run on the CPU by adding the CPU to ``dpm.core.model.AUTOCAST``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dpm.base import config as cfg, device as devices, registry, sections
from dpm.estimate import likelihood, parzen
from dpm.chain import sampling
from dpm.core import model as models
from dpm import synthetic
from dpm.core.evaluate import evaluate
from dpm.core.model import read_model_file
from dpm.core.objective import Objective
from dpm.run.train import Run, fit, update
from tests.test_train import make_project, stage_args

ROOT = Path(__file__).resolve().parents[1]
NAME = "mnist"  # an image model: amp is on in every profile


class Recorded(nn.Module):
    """A model's network, noting at each call whether gradients are recorded, what the model
    would autocast it to on CUDA, and whether autocast is on (on the CPU) as it runs."""

    def __init__(self, model: models.DiffusionModel):
        super().__init__()
        self.inner = model.net
        self.decide = model.autocast_dtype
        self.calls: list[tuple[bool, torch.dtype | None, bool]] = []

    def forward(self, xt, t):
        self.calls.append((torch.is_grad_enabled(), self.decide("cuda"), torch.is_autocast_enabled("cpu")))
        return self.inner(xt, t)

    def take(self) -> list[tuple[bool, torch.dtype | None, bool]]:
        calls, self.calls = self.calls, []
        return calls


def smoke(name: str = NAME, amp: bool | None = None):
    """A smoke-profile model (``amp`` as its section says, unless given), its section, objective
    and 64 synthetic examples."""
    section = cfg.load_profile("smoke").section(name)
    info = synthetic.data_info(name, section)
    x = synthetic.draw(info, 64, torch.Generator().manual_seed(0), torch.device("cpu"))
    model = models.build(registry.get(name).model, section, info, x, section.train.seed)
    if amp is not None:
        model.amp = amp
    return model, section, Objective.of(section, info), x


def recorded(amp: bool | None = None):
    model, section, objective, x = smoke(amp=amp)
    model.net = Recorded(model)
    return model, section, objective, x


def evaluations(model, section, objective, x) -> dict[str, object]:
    """Every kind of evaluation of ``model``, in the mode it is in; their results by name."""
    generator = torch.Generator().manual_seed(1)
    x0 = objective.prepare(x[:8], generator)
    eval_config = dataclasses.replace(section.eval, n_repeats=1, batch_size=8)
    return {"K": evaluate(model, objective, x0, eval_config).k,
            "L_k": likelihood.holdout_log_likelihood(model.process(), model.reverse, x0, 2, 8, seed=2),
            "samples": sampling.sample(model, (2, x0.shape[1]), torch.Generator().manual_seed(3))}


def test_the_model_takes_amp_from_its_train_section():
    assert smoke(NAME)[0].amp is cfg.load_profile("smoke").section(NAME).train.amp is True
    assert smoke("swiss_roll")[0].amp is False  # the toys' train section has no amp


@pytest.mark.pipeline
def test_on_cuda_only_a_training_step_would_autocast():
    model, section, objective, x = recorded()
    objective.loss(model, x[:8], torch.Generator().manual_seed(0))
    assert {dtype for _, dtype, _ in model.net.take()} == {torch.bfloat16}
    evaluations(model, section, objective, x)  # still in training mode, as inside fit
    model.eval()
    evaluations(model, section, objective, x)
    assert {dtype for _, dtype, _ in model.net.take()} == {None}


def test_the_learning_curve_inside_training_is_float32(tmp_path):
    model, section, objective, x = recorded()
    c = dataclasses.replace(section.train, n_iterations=2, log_every=1, checkpoint_every=100)
    fit(model, objective, x, objective.prepare(x[:8], torch.Generator().manual_seed(1)), c,
        Run(tmp_path, "f", progress=False))
    by_step = {grad: {dtype for g, dtype, _ in model.net.calls if g == grad} for grad in (True, False)}
    assert by_step == {True: {torch.bfloat16}, False: {None}}  # training steps; the curve's K (_log)


@pytest.mark.pipeline
def test_evaluation_never_runs_under_autocast_and_gives_the_float32_numbers(monkeypatch):
    """With autocast made available on the CPU, a training step runs under it, and every
    evaluation gives what the same weights give with amp off, bit for bit."""
    monkeypatch.setitem(models.AUTOCAST, "cpu", torch.bfloat16)
    model, section, objective, x = recorded()
    objective.loss(model, x[:8], torch.Generator().manual_seed(0))
    assert [on for _, _, on in model.net.take()] == [True]
    reference, *_ = smoke(amp=False)
    for training in (True, False):
        model.train(training), reference.train(training)
        ours, theirs = evaluations(model, section, objective, x), evaluations(reference, section, objective, x)
        assert not any(on for _, _, on in model.net.take()), training
        assert ours["K"] == theirs["K"], training
        assert torch.equal(ours["L_k"], theirs["L_k"]) and torch.equal(ours["samples"], theirs["samples"]), training


def test_amp_changes_no_number_on_the_cpu():
    trained = []
    for amp in (True, False):
        model, section, objective, x = smoke(amp=amp)
        optimiser = torch.optim.Adam(model.parameters(), lr=section.train.learning_rate)
        generator = torch.Generator().manual_seed(0)
        for _ in range(3):
            update(model, optimiser, objective.loss(model, x[:8], generator))
        trained.append(model.state_dict())
    assert all(torch.equal(value, trained[1][key]) for key, value in trained[0].items())


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA device as torch would report it (no GPU needed), its flags restored afterwards."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    before = [flag.fp32_precision for flag in flags]
    yield
    for flag, precision in zip(flags, before):
        flag.fp32_precision = precision


def precision() -> tuple[str, str]:
    return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision


def test_resolving_cuda_fixes_tf32_as_params_say_and_full_float32_by_default(fake_cuda):
    assert devices.resolve("cuda", sections.TF32Config(matmul=True, conv=False)).type == "cuda"
    assert precision() == ("tf32", "ieee")
    devices.resolve("auto", sections.TF32Config(matmul=False, conv=True))
    assert precision() == ("ieee", "tf32")
    devices.resolve("cuda")  # a caller without params: torch's defaults (conv in TF32) never decide
    assert precision() == ("ieee", "ieee")
    devices.resolve("cpu", sections.TF32Config(matmul=True, conv=True))  # the CPU: nothing set
    assert precision() == ("ieee", "ieee")


def test_the_shipped_params_ask_for_full_float32():
    for profile in cfg.PROFILES:
        assert cfg.load_profile(profile).tf32 == sections.TF32Config(matmul=False, conv=False), profile


def test_the_parzen_estimate_is_full_float32_whatever_tf32_says(fake_cuda, monkeypatch):
    devices.set_tf32(sections.TF32Config(matmul=True, conv=True))
    seen, addmm = [], torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *args, **kwargs: (seen.append(precision()), addmm(*args, **kwargs))[1])
    generator = torch.Generator().manual_seed(0)
    parzen.log_likelihoods(torch.rand(4, 3, generator=generator), torch.rand(6, 3, generator=generator), [0.5])
    assert seen and set(seen) == {("ieee", "ieee")}
    assert precision() == ("tf32", "tf32")  # the stage's own setting, back


def test_the_environment_names_versions_device_and_precision(fake_cuda):
    device = devices.resolve("cuda", sections.TF32Config(matmul=False, conv=True))
    assert devices.environment(device) == {
        "torch": torch.__version__, "device": "NVIDIA H100 80GB HBM3", "cuda": "12.8", "cudnn": 91000,
        "fp32_precision": {"matmul": "ieee", "conv": "tf32"}}
    on_cpu = devices.environment(torch.device("cpu"))
    assert on_cpu["torch"] == torch.__version__ and on_cpu["device"] == devices.describe(torch.device("cpu"))
    assert on_cpu["cuda"] is on_cpu["cudnn"] is on_cpu["fp32_precision"] is None  # none of it applies


RECORD_WRITERS = re.compile(r"\b(write_json|atomic_torch_save|write_shard)\(")


def test_every_stage_that_writes_a_record_writes_the_provenance():
    """Each stage module writing a metrics JSON, a model file or a sample shard's record takes
    its device and environment from the one helper (``dpm.base.provenance.computed_on``, through the
    metrics of ``dpm.core.experiment`` or the model record of ``dpm.run.train``); those of the main pipeline write their git
    commit and timings to their provenance file instead (no stage reads it)."""
    writers = [p for p in sorted((ROOT / "pipeline").glob("*.py"))
               if RECORD_WRITERS.search(p.read_text())]
    assert len(writers) >= 9
    missing = [p.name for p in writers if not re.search(
        r"stages\.(computed_on|provenance)\(|experiments\.metrics\(|train\.model_record\(|train_stage\.train_model\(", p.read_text())]
    assert not missing
    main = {"train", "evaluate", "likelihood", "kl_per_t", "limit", "parzen_samples", "parzen"}
    for name in main:
        text = (ROOT / "pipeline" / f"{name}.py").read_text()
        assert "stages.provenance(" not in text and "stages.write_provenance(args.provenance" in text, name


@pytest.mark.pipeline
def test_the_train_and_evaluate_stages_record_the_environment_and_their_provenance_beside(tmp_path):
    project = make_project(tmp_path, n_iterations=2)
    for module, args in (("pipeline.train", stage_args("swiss_roll")),
                         ("pipeline.evaluate", ["swiss_roll", "data/swiss_roll", "models/swiss_roll.pt",
                                                "results/metrics/evaluate/swiss_roll.json", "headline.json"])):
        subprocess.run([sys.executable, "-m", module, *args, "--provenance", f"provenance/{module}.json"],
                       cwd=project, check=True, capture_output=True)
    expected = devices.environment(torch.device("cpu")) | {"device": None}
    saved = read_model_file(project / "models/swiss_roll.pt")
    metrics = json.loads((project / "results/metrics/evaluate/swiss_roll.json").read_text())
    for record in (saved, metrics):
        assert record["environment"] | {"device": None} == expected
        assert record["environment"]["device"] == record["device"]
        assert "git_commit" not in record and "train_seconds" not in record
    assert all("seconds" not in row for row in saved["history"])
    trained = json.loads((project / "provenance/pipeline.train.json").read_text())
    evaluated = json.loads((project / "provenance/pipeline.evaluate.json").read_text())
    assert trained["git_commit"] and trained["train_seconds"] > 0 and evaluated["seconds"] > 0
