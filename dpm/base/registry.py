"""Every dataset of the pipeline, one entry each: what a stage needs to know about it.

An entry says the dataset's params.yaml section (its data section is declared here, the sections
every model shares in dpm/base/sections.py), the module that makes its split (and fetches its raw
files) and which kind of model it trains. The paper's values for its datasets are in
dpm/report/paper_table1.py and the figures drawn from them in dpm/report/paper_figures.py, read by
the stages that need them alone. Every stage dispatches through this table, and it imports no dataset module: a
stage imports the one module of the dataset it runs for (``Dataset.data_module()``), so editing
one dataset's module reruns only that dataset's stages.

Adding a dataset: README.md, "Adding a dataset" (its module under dpm/datasets, its entry here,
its section in conf/, its name in datasets.yaml).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterator

from dpm.base.params import Section, spec
from dpm.base.sections import (BINOMIAL_PARAMETERISATIONS, DEQUANTISATIONS, BinomialLimitConfig, DiffusionConfig, EvalConfig,
                          GaussianLimitConfig, ImageNetConfig, ImageTrainConfig, LikelihoodConfig, MLPConfig, RBFConfig,
                          TrainConfig)


# ---------------------------------------------------------------------------------------------
# Data sections of params.yaml


@dataclass(frozen=True)
class SwissRollData(Section):
    """2-D swiss roll (SPEC §5): sizes, generator noise (raw units) and seed."""
    n_train: int = spec(2)
    n_holdout: int = spec(2)
    noise: float = spec(0.0, open_low=True)
    seed: int = spec(0)


@dataclass(frozen=True)
class HeartbeatData(Section):
    """Binary heartbeat sequences (SPEC §3): sizes, sequence length, pulse period and seed."""
    n_train: int = spec(1)
    n_holdout: int = spec(2)
    n_bits: int = spec(1)
    period: int = spec(1)
    seed: int = spec(0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.period > self.n_bits:
            yield "period", (f"{self.period} is more than n_bits ({self.n_bits}): sequences would not all hold a "
                             "pulse, and the true log-likelihood log(1/period) would be wrong")


@dataclass(frozen=True)
class MnistData(Section):
    """MNIST (the four official idx files): the first n_train training images, the first
    n_holdout test images; 8-bit values dequantised as SPEC §2 says (``dequantisation``)."""
    n_train: int = spec(2, 60000)
    n_holdout: int = spec(2, 10000)
    dequantisation: str = spec(choices=DEQUANTISATIONS)

    def image_shape(self) -> tuple[int, int, int]:
        return 1, 28, 28


@dataclass(frozen=True)
class Cifar10Data(Section):
    """CIFAR-10: ``subset`` is images 0–3999 of data_batch_1 (the offline mirror's), split
    n_train / n_holdout in order; ``full`` is the official archive's 50,000 / 10,000 split."""
    source: str = spec(choices=("subset", "full"))
    n_train: int = spec(2, 50000)
    n_holdout: int = spec(2, 10000)
    dequantisation: str = spec(choices=DEQUANTISATIONS)

    SUBSET_SIZE = 4000  # images in the mirror's subset

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.source == "subset" and self.n_train + self.n_holdout > self.SUBSET_SIZE:
            yield "n_train", (f"n_train + n_holdout = {self.n_train + self.n_holdout} exceeds the "
                              f"{self.SUBSET_SIZE} images of the subset")

    def image_shape(self) -> tuple[int, int, int]:
        return 3, 32, 32


@dataclass(frozen=True)
class DeadLeavesData(Section):
    """Seeded dead-leaves images (SPEC §5): disks with radius density ∝ r⁻³ on [r_min, r_max]
    pixels, uniform 8-bit grey levels, square images of ``image_size`` pixels."""
    n_train: int = spec(2)
    n_holdout: int = spec(2)
    image_size: int = spec(4, 1024)
    r_min: float = spec(0.0, open_low=True)
    r_max: float = spec(0.0, open_low=True)
    dequantisation: str = spec(choices=DEQUANTISATIONS)
    seed: int = spec(0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.r_max < self.r_min:
            yield "r_max", f"must be >= r_min ({self.r_min}), got {self.r_max}"

    def image_shape(self) -> tuple[int, int, int]:
        return 1, self.image_size, self.image_size


@dataclass(frozen=True)
class BarkData(Section):
    """Bark (UIUC textures T01–T04) or, where those are not at hand, the mirror's texture
    photographs (``stand_in``): square patches of ``patch_size`` pixels cut on a grid with
    ``stride``, the bottom ``holdout_fraction`` of every photograph kept for the holdout."""
    source: str = spec(choices=("bark", "stand_in"))
    patch_size: int = spec(4)
    stride: int = spec(1)
    holdout_fraction: float = spec(0.0, 1.0, open_low=True, open_high=True)
    dequantisation: str = spec(choices=DEQUANTISATIONS)

    # (height, width) of each source's photographs: UIUC's are 640×480 landscape, the stand-ins
    # 512×512 (dpm/datasets/textures.py checks the files against this)
    PHOTO_SHAPES = {"bark": (480, 640), "stand_in": (512, 512)}

    def holdout_rows(self) -> int:
        """Rows of each photograph below the train/holdout line."""
        height = self.PHOTO_SHAPES[self.source][0]
        return height - int(round(height * (1 - self.holdout_fraction)))

    def problems(self) -> Iterator[tuple[str, str]]:
        height, width = self.PHOTO_SHAPES[self.source]
        train_rows = height - self.holdout_rows()
        if self.patch_size > min(self.holdout_rows(), train_rows, width):
            yield "patch_size", (f"{self.patch_size} does not fit the {self.source} photographs ({height}×{width}): "
                                 f"with holdout_fraction {self.holdout_fraction} their train part has {train_rows} "
                                 f"rows and their holdout part {self.holdout_rows()}")

    def image_shape(self) -> tuple[int, int, int]:
        return 1, self.patch_size, self.patch_size


@dataclass(frozen=True)
class ParzenConfig(Section):
    """The Parzen-window estimate of Table 2 (SPEC §2, Goodfellow et al. 2014): n_samples model
    samples as centres, σ chosen on training images validation_start.. + n_validation, the
    holdout (the test images) scored. The "perfect model" row uses the first n_centres
    training images as centres. Samples are drawn batch_size at a time, batch b from its own
    seed (seed, b), so the set does not depend on how many processes share the batches."""
    n_samples: int = spec(1)
    batch_size: int = spec(1)
    seed: int = spec(0)
    n_centres: int = spec(1)
    validation_start: int = spec(0)
    n_validation: int = spec(1)

    def n_batches(self) -> int:
        """Batches of the sample set: ⌈n_samples / batch_size⌉, the last possibly short."""
        return -(-self.n_samples // self.batch_size)

    def batch_rows(self, batch: int) -> int:
        """Samples in batch ``batch``."""
        return min(self.batch_size, self.n_samples - batch * self.batch_size)


# ---------------------------------------------------------------------------------------------
# Whole sections


@dataclass(frozen=True)
class SwissRollConfig(Section):
    data: SwissRollData
    diffusion: DiffusionConfig
    net: RBFConfig
    train: TrainConfig
    eval: EvalConfig
    likelihood: LikelihoodConfig = field(default=None, kw_only=True)
    limit: GaussianLimitConfig = field(default=None, kw_only=True)


@dataclass(frozen=True)
class HeartbeatConfig(Section):
    data: HeartbeatData
    diffusion: DiffusionConfig
    net: MLPConfig
    train: TrainConfig
    eval: EvalConfig
    likelihood: LikelihoodConfig = field(default=None, kw_only=True)
    limit: BinomialLimitConfig = field(default=None, kw_only=True)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.diffusion.parameterisation not in BINOMIAL_PARAMETERISATIONS:
            yield "diffusion.parameterisation", (f"binomial diffusion takes {' or '.join(BINOMIAL_PARAMETERISATIONS)}, "
                                                 f"got {self.diffusion.parameterisation!r}")
        if self.diffusion.schedule != "fixed":
            yield "diffusion.schedule", "binomial diffusion takes the fixed schedule (β cannot be learned through bits)"
        # the holdout repeats the data's few sequences: each is computed once, and the noise of an
        # estimate shared by several examples needs at least 2 draws (dpm.estimate.likelihood.weighted_mean)
        if self.likelihood is not None:
            for key, draws in (("n_repeats", self.likelihood.n_repeats), ("kl_repeats", self.likelihood.kl_repeats),
                               ("n_trajectories", self.likelihood.n_trajectories // self.likelihood.max_k)):
                if draws < 2:
                    yield f"likelihood.{key}", ("the heartbeat's holdout repeats its sequences, so each estimate needs "
                                                f"at least 2 draws per sequence; got {draws}"
                                                + (f" group(s) of max_k = {self.likelihood.max_k}"
                                                   if key == "n_trajectories" else ""))


@dataclass(frozen=True)
class ImageConfig(Section):
    """The section of an image dataset (its ``data`` class differs from one dataset to another)."""
    data: Section
    diffusion: DiffusionConfig
    net: ImageNetConfig
    train: ImageTrainConfig
    eval: EvalConfig
    likelihood: LikelihoodConfig = field(default=None, kw_only=True)

    def problems(self) -> Iterator[tuple[str, str]]:
        coarsest = self.net.coarsest_scale()
        sides = self.data.image_shape()[1:]
        if any(side % coarsest for side in sides):
            yield "net.n_scales", (f"{self.net.n_scales} scales need image sides divisible by {coarsest}, "
                                   f"got {sides[0]}×{sides[1]}")


@dataclass(frozen=True)
class MnistConfig(ImageConfig):
    data: MnistData
    parzen: ParzenConfig

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        p, n_train = self.parzen, self.data.n_train
        if p.validation_start + p.n_validation > n_train:
            yield "parzen", (f"validation images {p.validation_start}..{p.validation_start + p.n_validation - 1} "
                             f"are past mnist.data.n_train ({n_train})")
        if p.n_centres > n_train:
            yield "parzen.n_centres", f"{p.n_centres} is more than mnist.data.n_train ({n_train})"


@dataclass(frozen=True)
class Cifar10Config(ImageConfig):
    data: Cifar10Data


@dataclass(frozen=True)
class DeadLeavesConfig(ImageConfig):
    data: DeadLeavesData


@dataclass(frozen=True)
class BarkConfig(ImageConfig):
    data: BarkData


# ---------------------------------------------------------------------------------------------
# The entries


@dataclass(frozen=True)
class Dataset:
    """One dataset: see the module docstring.

    Attributes:
        name: its params.yaml section and its name in dvc.yaml.
        section: the class of its params.yaml section.
        module: the module holding ``make_split(data_section, raw_dir)`` (and
            ``fetch_raw(data_section, dest_dir)`` if ``fetched``).
        fetched: whether its raw files are fetched (fetch stage) before its split is made.
        model: the kind of model it trains (``dpm.core.model.build``): ``rbf`` (Gaussian diffusion,
            App. D.1.1), ``sigmoid_mlp`` (binomial, App. D.1.2) or ``image`` (Gaussian, App. D.2.1).
        limit: whether the best K of its model's family is computed (a limit stage,
            ``pipeline/limit.py``): its module gives the true distribution that needs (the roll's
            ``curve``, the heartbeat's sequences).
    """
    name: str
    section: type
    module: str
    fetched: bool
    model: str
    limit: bool = False

    @property
    def is_image(self) -> bool:
        return self.model == "image"

    def data_module(self) -> ModuleType:
        """The dataset's own module (imported on demand: only its stages depend on it)."""
        return importlib.import_module(self.module)


DATASETS = {d.name: d for d in (
    Dataset("swiss_roll", SwissRollConfig, "dpm.datasets.swiss_roll", fetched=False, model="rbf", limit=True),
    Dataset("heartbeat", HeartbeatConfig, "dpm.datasets.heartbeat", fetched=False, model="sigmoid_mlp", limit=True),
    Dataset("bark", BarkConfig, "dpm.datasets.textures", fetched=True, model="image"),
    Dataset("dead_leaves", DeadLeavesConfig, "dpm.datasets.dead_leaves", fetched=False, model="image"),
    Dataset("cifar10", Cifar10Config, "dpm.datasets.cifar10", fetched=True, model="image"),
    Dataset("mnist", MnistConfig, "dpm.datasets.mnist", fetched=True, model="image"),
)}
NAMES = tuple(DATASETS)


def get(name: str) -> Dataset:
    """The entry of dataset ``name``; ValueError naming the known ones otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(NAMES)}")
    return DATASETS[name]
