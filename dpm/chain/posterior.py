"""Posterior sampling p̃(x_0) ∝ p(x_0) r(x_0): r multiplied into every reverse step (§2.5).

A condition knows two things: how to draw the chain's start p̃(x_T) ∝ π(x_T) r(x_T), and how to
turn one reverse step's parameters into a draw from p̃(x_{t−1}|x_t) ∝ p(x_{t−1}|x_t) r(x_{t−1})
(Eq. 21). With r(x_t) = r(x_0) at every t (Eq. 22) one loop, ``posterior_trajectory``, draws every
chain: ``Unconditioned`` (r ≡ 1) is the model's own chain p, which ``dpm.chain.sampling`` draws through it.
Paper: §2.5, Eq. 16–22, Table C.1.

Deviation (a property of the paper's scheme, not of this code): Eq. 19–21 drop the normalisers
∫ q(x_{t−1}|x_t) r(x_{t−1}) dx_{t−1}, which depend on x_t (App. C, Eq. 57–58). The chain is therefore
not exactly p ∝ p r: on N(0, I) data with r = N(y; x, σ_d²) and many small steps it tends to π r²
(mean y/(1 + σ_d²/2)), not π r (mean y/(1 + σ_d²)). Multiplying each step by √r instead
(``form="balanced"``, the default for ``Denoise``, ``Gradient`` and ``BernoulliEvidence``; the start
stays π r) reaches π r as the steps shrink: measured with T = 200, σ_d = 1, mean 0.497·y and
variance 0.499 against the true 0.5·y and 0.5 (the paper's form: 0.666·y, 0.333). The binomial
chain has the same bias: per bit, with the equilibrium reverse and T = 2000, the paper's form gives
P(x_0 = 1) = 0.953 for r(1) = 0.9, π r² exactly in the limit, against the true π r = 0.692 (√r per
step: 0.691). tests/test_posterior.py checks both processes.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor

from dpm.core.diffusion import BETA_CLAMP, BinomialDiffusion, GaussianDiffusion
from dpm.core.model import DiffusionModel


class Unconditioned:
    """r ≡ 1: p̃ = p, the model's own chain, and what a condition leaves as it is (any process).

    Paper: Eq. 5 (x_T ~ π, then the reverse steps), App. B.2 (the last step tied to the forward kernel).
    """

    def start(self, process, shape, generator=None, device="cpu") -> Tensor:
        """x_T ~ π."""
        return process.prior_sample(shape, generator, device)

    def step(self, process, params, noise: Tensor) -> Tensor:
        """x_{t−1} ~ p(x_{t−1}|x_t) from ``p_params``' output and the step's ``noise_like`` noise."""
        return process.p_sample(params, noise)

    def last_step(self, process, x1: Tensor, noise: Tensor | None) -> Tensor:
        """x_0 ~ T_π(x_0|x_1; β_1) = q(x_1|x_0)'s kernel read backwards, drawn by ``q_step`` itself;
        with ``noise`` None, its mean x_1√(1−β_1) (Gaussian diffusion only: a binary step has no
        binary mean). Paper: App. B.2.

        Deviation (rounding only): not ``step`` of ``tied_params``, the same kernel, which rounds
        differently (√β_1 taken in float32, not float64; sigmoid(logit q) for q; on the smoke bark
        model 581 of 1,024 values moved, by up to 1.4e−6): the unconditional samples are drawn as
        they always were, bit for bit (tests/test_sampling.py)."""
        t1 = torch.ones(x1.shape[:1], dtype=torch.long, device=x1.device)
        if noise is None:
            if not isinstance(process, GaussianDiffusion):
                raise ValueError(f"the final step's mean needs Gaussian diffusion, not {type(process).__name__}")
            noise = torch.zeros_like(x1)  # q_step is affine in its N(0, I) noise
        return process.q_step(x1, t1, noise)


class Condition(Unconditioned):
    """A non-constant r: the tied last step T_π(x_0|x_1; β_1) is multiplied by r as every other
    step is, through ``step`` (Paper: Eq. 21 at t = 1); a subclass overrides ``step`` and, where r
    changes p̃(x_T) ∝ π r, ``start``."""

    def last_step(self, process, x1: Tensor, noise: Tensor | None) -> Tensor:
        if noise is None:
            raise ValueError("the final step's mean is the unconditional chain's (r ≡ 1) alone")
        return self.step(process, tied_params(process, x1), noise)


class Inpaint(Condition):
    """r = a delta on the known entries (mask True), constant elsewhere; any process.

    Args:
        mask: bool tensor broadcastable to x, True where x is known.
        known: the known values, broadcastable to x (entries where mask is False are ignored).
    Paper: §2.5.3, Fig. 5 (clamp the known pixels at every step; start the rest from π).
    """

    def __init__(self, mask: Tensor, known: Tensor):
        self.mask, self.known = mask, known

    def clamp(self, x: Tensor) -> Tensor:
        return torch.where(self.mask, self.known.to(x.dtype), x)

    def start(self, process, shape, generator=None, device="cpu") -> Tensor:
        return self.clamp(process.prior_sample(shape, generator, device))

    def step(self, process, params, noise: Tensor) -> Tensor:
        return self.clamp(process.p_sample(params, noise))


# How much of r each reverse step multiplies in: the paper's r (Eq. 21), or √r ("balanced"),
# which on N(0, I) data reaches the true posterior π·r as T grows (see the module docstring).
FORMS = {"paper": 1.0, "balanced": 0.5}


class Denoise(Condition):
    """r(x) = N(y; x, σ_d² I), multiplied into each Gaussian step in closed form.

    N(μ, Σ)·r^k ∝ N(μ̃, Σ̃) with Σ̃ = 1/(1/Σ + k/σ_d²), μ̃ = Σ̃(μ/Σ + k·y/σ_d²), k = 1 (``paper``)
    or ½ (``balanced``); the start is π·r = N(y/(1 + σ_d²), σ_d²/(1 + σ_d²)) in both.
    Paper: §2.5.3 (exact multiplication), Eq. 21–22. Deviation: ``balanced`` (the default)
    multiplies each step by √r; the paper's r per step is biased (module docstring).
    """

    def __init__(self, y: Tensor, sigma_d: float, form: str = "balanced"):
        self.y, self.var_d = y, sigma_d ** 2
        self.power = FORMS[form]

    def start(self, process: GaussianDiffusion, shape, generator=None, device="cpu") -> Tensor:
        var = self.var_d / (1.0 + self.var_d)
        noise = process.prior_sample(shape, generator, device)
        return self.y.to(noise) / (1.0 + self.var_d) + var ** 0.5 * noise

    def step(self, process: GaussianDiffusion, params: tuple[Tensor, Tensor], noise: Tensor) -> Tensor:
        mean, var = params
        precision_d = self.power / self.var_d
        var_post = 1.0 / (1.0 / var + precision_d)
        mean_post = var_post * (mean / var + self.y.to(mean) * precision_d)
        return process.p_sample((mean_post, var_post), noise)


class Gradient(Condition):
    """Any smooth r, as a perturbation of the Gaussian step's mean: μ̃ = μ + Σ ∂log r/∂x |_μ.

    Args:
        log_r: maps x (..., D) to log r(x), one value per row (or per entry; it is summed).
    Paper: §2.5.3, Table C.1 (perturbed reverse kernel). Deviation: Table C.1 prints the shift as
    (f_Σ/2)^{1/2} ∂log r/∂x; we use f_Σ ∂log r/∂x, the first-order expansion of N(μ, Σ)·r, which
    equals ``Denoise``'s mean to first order in Σ/σ_d². The start is π: π·r has no closed form.
    """

    def __init__(self, log_r: Callable[[Tensor], Tensor], form: str = "balanced"):
        self.log_r = log_r
        self.power = FORMS[form]

    def step(self, process: GaussianDiffusion, params: tuple[Tensor, Tensor], noise: Tensor) -> Tensor:
        mean, var = params
        with torch.enable_grad():
            at = mean.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_r(at).sum(), at)
        return process.p_sample((mean + self.power * var * grad, var), noise)


class BernoulliEvidence(Condition):
    """Factorised r(x_i = 1) = d_i for binomial diffusion: the flip rate becomes
    f_b d / (f_b d + (1 − f_b)(1 − d)), i.e. logit f̃_b = logit f_b + logit d.

    Args:
        rate: d, r's probability of a 1 per bit, in (0, 1) (use ``Inpaint`` for 0 or 1).
        form: ``balanced`` (the default) multiplies each step by √r (logit f̃_b = logit f_b +
            ½ logit d), ``paper`` by r; the start is π·r in both.
    Paper: Table C.1 (perturbed binomial reverse kernel, c and d). Deviation: as ``Denoise``, the
    paper's r per step tends to π r², √r to π r (module docstring).
    """

    def __init__(self, rate: Tensor, form: str = "balanced"):
        self.logit_d = torch.logit(rate.clamp(BETA_CLAMP, 1.0 - BETA_CLAMP))
        self.power = FORMS[form]

    def start(self, process: BinomialDiffusion, shape, generator=None, device="cpu") -> Tensor:
        logit = torch.logit(torch.tensor(process.p_pi)) + self.logit_d
        return process.p_sample(logit.to(device).expand(shape), torch.rand(shape, generator=generator, device=device))

    def step(self, process: BinomialDiffusion, logit: Tensor, noise: Tensor) -> Tensor:
        return process.p_sample(logit + self.power * self.logit_d.to(logit), noise)


def tied_params(process, x1: Tensor):
    """Parameters of the last step T_π(x_0|x_1; β_1), tied to the forward kernel (App. B.2)."""
    t1 = torch.ones(x1.shape[:1], dtype=torch.long, device=x1.device)
    if isinstance(process, BinomialDiffusion):
        return torch.logit(process.step_rate(x1, t1).clamp(BETA_CLAMP, 1.0 - BETA_CLAMP))
    mean = process.q_step(x1, t1, torch.zeros_like(x1))
    return mean, process.beta[0].to(x1).expand_as(mean)


@torch.no_grad()
def posterior_trajectory(model: DiffusionModel, condition: Unconditioned, shape: tuple[int, ...],
                         generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                         final_mean: bool = False) -> Iterator[tuple[int, Tensor]]:
    """Yield (t, x_t), t = T..0, of one run of the modified reverse chain p̃. Paper: Eq. 5, 21–22.

    x_T ~ p̃(x_T) ∝ π r; x_{t−1} ~ p̃(x_{t−1}|x_t) ∝ p(x_{t−1}|x_t) r(x_{t−1}) for t = T..2; the
    tied last step T_π(x_0|x_1; β_1) is multiplied by r the same way (``last_step``). Every
    step's noise is drawn here, after its parameters, in this order; with ``final_mean`` the last
    step draws none and x_0 is its mean (``Unconditioned.last_step``).
    """
    process = model.process()
    x = condition.start(process, shape, generator, device)
    yield process.n_steps, x
    for t in range(process.n_steps, 1, -1):
        t_batch = torch.full(shape[:1], t, dtype=torch.long, device=device)
        x = condition.step(process, model.reverse(process, x, t_batch), process.noise_like(x, generator))
        yield t - 1, x
    yield 0, condition.last_step(process, x, None if final_mean else process.noise_like(x, generator))


def posterior_sample(model: DiffusionModel, condition: Unconditioned, shape: tuple[int, ...],
                     generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                     final_mean: bool = False) -> Tensor:
    """x_0 ~ p̃(x_0) ∝ p(x_0) r(x_0): the end of ``posterior_trajectory``. Paper: §2.5."""
    for _, x in posterior_trajectory(model, condition, shape, generator, device, final_mean):
        pass
    return x
