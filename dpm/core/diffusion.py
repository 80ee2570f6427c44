"""Gaussian and binomial diffusion: the forward process q and the reverse step's form p.

Time is the paper's t = 1..T; ``t`` arguments are integer tensors whose shape is a prefix of
the data's shape (a (B,) tensor for (B, D) data, an (n_t,) tensor for (n_t, B, D) data) and
arrays are indexed ``a[t - 1]``. Everything is in nats and summed over the last (data)
dimension. The networks never see these classes: they emit raw coefficients and
``p_params`` turns those into the reverse step's parameters (Table C.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dpm.base.sections import BINOMIAL_PARAMETERISATIONS, GAUSSIAN_PARAMETERISATIONS

# Keeps logit β_t finite where β_T = 1 (the erase-fraction schedule's last step).
BETA_CLAMP = 1e-7


def _at(values: Tensor, t: Tensor, x: Tensor) -> Tensor:
    """``values[t - 1]`` in x's dtype, shaped to broadcast against x."""
    v = values[t - 1].to(x.dtype)
    return v.reshape(t.shape + (1,) * (x.ndim - t.ndim))


class GaussianDiffusion:
    """Gaussian diffusion towards π = N(0, I) (Paper: §2.1, Table C.1, App. A).

    Args:
        beta: (T,) tensor of β_t, float64; may carry gradients (learned schedule).
        parameterisation: how ``p_params`` reads the network's coefficients: ``paper``
            (Eq. 65–66), ``kernel`` (a perturbation of the forward kernel, the authors' code),
            ``x0`` or ``v`` (the posterior q(x_{t−1}|x_t, x̂_0) at a predicted x̂_0).
    """

    PARAMETERISATIONS = GAUSSIAN_PARAMETERISATIONS

    def __init__(self, beta: Tensor, parameterisation: str = "kernel"):
        if parameterisation not in self.PARAMETERISATIONS:
            raise ValueError(f"unknown parameterisation {parameterisation!r}")
        self.parameterisation = parameterisation
        self.beta = beta
        self.n_steps = beta.shape[0]
        # q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
        self.alpha_bar = torch.cumprod(1.0 - beta, 0)
        # q(x_{t−1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, σ²_t I) for t ≥ 2
        alpha_bar_prev = torch.cat([beta.new_ones(1), self.alpha_bar[:-1]])
        self.posterior_var = beta * (1.0 - alpha_bar_prev) / (1.0 - self.alpha_bar)
        self.posterior_coef_x0 = alpha_bar_prev.sqrt() * beta / (1.0 - self.alpha_bar)
        self.posterior_coef_xt = (1.0 - beta).sqrt() * (1.0 - alpha_bar_prev) / (1.0 - self.alpha_bar)
        # reverse step parameterised around the forward kernel (the authors' code)
        self.logit_beta = torch.logit(beta.clamp(BETA_CLAMP, 1.0 - BETA_CLAMP))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t ~ q(x_t|x_0) from standard normal ``noise`` (reparameterised). Paper: Eq. 2, App. A."""
        return _at(self.alpha_bar.sqrt(), t, x0) * x0 + _at((1.0 - self.alpha_bar).sqrt(), t, x0) * noise

    def q_step(self, x_prev: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t ~ q(x_t|x_{t−1}) = N(x_{t−1}√(1−β_t), β_t I). Paper: Table C.1.

        Also the exact reverse of the step at equilibrium, T_π(x_{t−1}|x_t; β_t) (App. B.2).
        """
        return _at((1.0 - self.beta).sqrt(), t, x_prev) * x_prev + _at(self.beta.sqrt(), t, x_prev) * noise

    def q_posterior(self, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t−1}|x_t, x_0), t ≥ 2. Paper: Eq. 14, App. A."""
        mean = _at(self.posterior_coef_x0, t, xt) * x0 + _at(self.posterior_coef_xt, t, xt) * xt
        return mean, _at(self.posterior_var, t, xt).expand_as(mean)

    def p_params(self, xt: Tensor, t: Tensor, z_mu: Tensor, z_sigma: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of p(x_{t−1}|x_t) from the network's raw coefficients, t ≥ 2.

        Σ = sigmoid(z_Σ + logit β_t) in every form (Eq. 65). The mean:
        ``paper``: μ = (x_t − z_μ)(1 − Σ) + z_μ (Eq. 66): x_t pulled by Σ towards z_μ, the
            mean of the chain's equilibrium.
        ``kernel``: μ = x_t√(1−β_t) + z_μ√β_t (the authors' code); zero coefficients give the
            forward kernel, so an untrained model starts at K − L_null = 0 on N(0, I) data.
        ``x0``: μ is the posterior mean of q(x_{t−1}|x_t, x̂_0) at x̂_0 = √ᾱ_t x_t + z_μ. With
            z = 0, x̂_0 = E[x_0|x_t] for N(0, I) data and μ = x_t√(1−β_t): again the forward
            kernel. Near a thin manifold the displacement z_μ is O(1)-Lipschitz in x_t at every
            t, whereas ``kernel``'s z_μ must grow like √β_t/(1 − ᾱ_t) as the noise shrinks.
        ``v``: as ``x0`` with x̂_0 = √ᾱ_t x_t − √(1−ᾱ_t) z_μ, i.e. z_μ predicts
            v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022). The ideal z_μ is O(1) at every t
            (≈ ε at small t, ≈ −x_0 at large t), which a network shared across t through a few
            smooth bumps can express; ``x0``'s ideal z_μ shrinks like √(1−ᾱ_t) towards t = 1.
        Paper: Table C.1 (f_μ, f_Σ), Eq. 65–66. Deviation: the authors' code (SPEC §4) divides
        z_Σ by √T; with a readout per step or per bump the scale is left to the readout.
        ``x0`` and ``v`` are not the paper's; README "Deviations" gives the measurements.
        """
        var = torch.sigmoid(z_sigma + _at(self.logit_beta, t, xt))
        if self.parameterisation == "paper":
            return (xt - z_mu) * (1.0 - var) + z_mu, var
        if self.parameterisation == "kernel":
            return _at((1.0 - self.beta).sqrt(), t, xt) * xt + _at(self.beta.sqrt(), t, xt) * z_mu, var
        x0_hat = _at(self.alpha_bar.sqrt(), t, xt) * xt
        if self.parameterisation == "x0":
            x0_hat = x0_hat + z_mu
        else:
            x0_hat = x0_hat - _at((1.0 - self.alpha_bar).sqrt(), t, xt) * z_mu
        return self.q_posterior(x0_hat, xt, t)[0], var

    @staticmethod
    def p_sample(params: tuple[Tensor, Tensor], noise: Tensor) -> Tensor:
        """x_{t−1} ~ N(μ, Σ) given ``p_params``' output."""
        mean, var = params
        return mean + var.sqrt() * noise

    @staticmethod
    def kl(q_params: tuple[Tensor, Tensor], p_params: tuple[Tensor, Tensor]) -> Tensor:
        """KL(q ‖ p) between diagonal Gaussians, summed over the last dimension (nats)."""
        (mean_q, var_q), (mean_p, var_p) = q_params, p_params
        return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0).sum(-1)

    def entropy(self, x0: Tensor, t: Tensor) -> Tensor:
        """H_q(X_t|X_0 = x_0) = D/2 · log(2πe(1 − ᾱ_t)) (nats). Paper: Eq. 14."""
        var = _at(1.0 - self.alpha_bar, t, x0)
        return 0.5 * torch.log(2 * math.pi * math.e * var).expand_as(x0).sum(-1)

    @staticmethod
    def log_prior(x: Tensor) -> Tensor:
        """log π(x) for π = N(0, I) (nats): the null model's log-likelihood."""
        return (-0.5 * x ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)

    def expected_log_prior(self, x0: Tensor, t: Tensor) -> Tensor:
        """E_{q(x_t|x_0)} log π(x_t) in closed form (nats). Paper: App. B.1 (−H_p(X_T))."""
        alpha_bar = _at(self.alpha_bar, t, x0)
        second_moment = alpha_bar * x0 ** 2 + 1.0 - alpha_bar
        return (-0.5 * second_moment - 0.5 * math.log(2 * math.pi)).sum(-1)

    @staticmethod
    def prior_sample(shape: tuple[int, ...], generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> Tensor:
        """x_T ~ π = N(0, I)."""
        return torch.randn(shape, generator=generator, device=device)

    @staticmethod
    def noise_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The auxiliary noise of one Gaussian step: standard normal."""
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


class BinomialDiffusion:
    """Binomial diffusion towards π = Bernoulli(p_π) per bit (Paper: §2.1, Table C.1).

    Args:
        beta: (T,) tensor of β_t, float64.
        p_pi: π's rate, the data's mean activity (0.2 for the heartbeat, SPEC §2).
        parameterisation: how ``p_params`` reads the network's coefficients: ``kernel`` (a
            perturbation of the forward step's logit) or ``x0`` (a predicted x_0).
    """

    PARAMETERISATIONS = BINOMIAL_PARAMETERISATIONS

    def __init__(self, beta: Tensor, p_pi: float, parameterisation: str = "kernel"):
        if parameterisation not in self.PARAMETERISATIONS:
            raise ValueError(f"unknown parameterisation {parameterisation!r}")
        self.parameterisation = parameterisation
        self.beta = beta
        self.p_pi = p_pi
        self.n_steps = beta.shape[0]
        # q(x_t = 1 | x_0) = ᾱ_t x_0 + (1 − ᾱ_t) p_π
        self.alpha_bar = torch.cumprod(1.0 - beta, 0)
        if parameterisation == "x0":
            self._x0_tables()

    def _x0_tables(self) -> None:
        """float64 tables for the ``x0`` form, over bits a = x_0, x = x_t, v = x_{t−1} and t:
        log q(x_{t−1} = v|x_t = x, x_0 = a), shape (2, 2, 2, T), and the logit of
        q(x_0 = 1|x_t = x) for x_0 ~ π, shape (2, T)."""
        beta, p = self.beta.double(), self.p_pi
        alpha_bar = self.alpha_bar.double()
        alpha_bar_prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
        bit = torch.tensor([0.0, 1.0], dtype=torch.float64, device=beta.device)[:, None]  # (2, 1) against (T,)
        rate_prev = alpha_bar_prev * bit + (1 - alpha_bar_prev) * p  # (a, t): q(x_{t−1} = 1|x_0 = a)
        prior = torch.stack([1 - rate_prev, rate_prev], dim=1)  # (a, v, t)
        step = bit * (1 - beta) + p * beta  # (v, t): q(x_t = 1|x_{t−1} = v)
        like = torch.stack([1 - step, step])  # (x, v, t)
        joint = torch.log(prior)[:, None] + torch.log(like)[None]  # (a, x, v, t)
        self.log_posterior = joint - torch.logsumexp(joint, dim=2, keepdim=True)
        rate = alpha_bar * bit + (1 - alpha_bar) * p  # (a, t): q(x_t = 1|x_0 = a)
        like_t = torch.stack([1 - rate, rate], dim=1)  # (a, x, t)
        self.x0_logit = math.log(p / (1 - p)) + torch.log(like_t[1]) - torch.log(like_t[0])  # (x, t)

    def marginal_rate(self, x0: Tensor, t: Tensor) -> Tensor:
        """q(x_t = 1 | x_0), elementwise. t may be 0 (x_0 itself)."""
        alpha_bar = torch.cat([self.alpha_bar.new_ones(1), self.alpha_bar])
        a = _at(alpha_bar, t + 1, x0)
        return a * x0 + (1.0 - a) * self.p_pi

    def step_rate(self, x_prev: Tensor, t: Tensor) -> Tensor:
        """q(x_t = 1 | x_{t−1}) = x_{t−1}(1 − β_t) + p_π β_t. Paper: Table C.1."""
        beta = _at(self.beta, t, x_prev)
        return x_prev * (1.0 - beta) + self.p_pi * beta

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t ~ q(x_t|x_0) from uniform ``noise`` on [0, 1)."""
        return (noise < self.marginal_rate(x0, t)).to(x0.dtype)

    def q_step(self, x_prev: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t ~ q(x_t|x_{t−1}) from uniform ``noise``; also the equilibrium reverse step."""
        return (noise < self.step_rate(x_prev, t)).to(x_prev.dtype)

    def q_posterior(self, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        """q(x_{t−1} = 1 | x_t, x_0) by Bayes' rule, t ≥ 2. Paper: Eq. 14."""
        prior_1 = self.marginal_rate(x0, t - 1)
        beta = _at(self.beta, t, xt)
        like_1 = xt * (1.0 - beta + self.p_pi * beta) + (1.0 - xt) * (1.0 - self.p_pi) * beta
        like_0 = xt * self.p_pi * beta + (1.0 - xt) * (1.0 - self.p_pi * beta)
        return prior_1 * like_1 / (prior_1 * like_1 + (1.0 - prior_1) * like_0)

    def p_params(self, xt: Tensor, t: Tensor, z: Tensor) -> Tensor:
        """The logit of f_b(x_t, t) = p(x_{t−1} = 1 | x_t), kept as a logit for stable logs.

        ``kernel``: f_b = sigmoid(z + logit(x_t(1 − β_t) + p_π β_t)).
        ``x0``: the network predicts x_0 = 1 with probability s = sigmoid(z + logit q(x_0 = 1|x_t)),
        the latter for x_0 ~ π, and f_b = s q(x_{t−1} = 1|x_t, x_0 = 1) + (1 − s) q(x_{t−1} = 1|x_t, x_0 = 0),
        computed in log space (the posteriors are within 1e−7 of 0 or 1 at small t).
        Either way zero coefficients give the equilibrium reverse of the forward step,
        T_π(x_{t−1}|x_t; β_t). Paper: App. D.1.2 (the readout through a sigmoid). Deviation: the
        paper adds no offset; without one an untrained model flips bits at rate ~p_π at every
        one of the T = 2000 steps (K ≈ −28,000 bits) and training crawls.
        """
        if self.parameterisation == "kernel":
            return z + torch.logit(self.step_rate(xt, t).clamp(BETA_CLAMP, 1.0 - BETA_CLAMP))
        is_one = xt > 0.5
        pick = lambda table: torch.where(is_one, _at(table[1], t, xt), _at(table[0], t, xt))  # noqa: E731
        u = z + pick(self.x0_logit)
        log_s1, log_s0 = F.logsigmoid(u), F.logsigmoid(-u)
        post = self.log_posterior  # (x_0, x_t, x_{t−1}, t)
        log_rate_1 = torch.logaddexp(log_s1 + pick(post[1, :, 1]), log_s0 + pick(post[0, :, 1]))
        log_rate_0 = torch.logaddexp(log_s1 + pick(post[1, :, 0]), log_s0 + pick(post[0, :, 0]))
        return log_rate_1 - log_rate_0

    @staticmethod
    def p_sample(logit: Tensor, noise: Tensor) -> Tensor:
        """x_{t−1} ~ Bernoulli(sigmoid(logit)) from uniform ``noise``."""
        return (noise < torch.sigmoid(logit)).to(logit.dtype)

    @staticmethod
    def kl(q_rate: Tensor, p_logit: Tensor) -> Tensor:
        """KL(Bernoulli(q) ‖ Bernoulli(sigmoid(p_logit))), summed over the last dimension."""
        neg_entropy = torch.special.xlogy(q_rate, q_rate) + torch.special.xlogy(1 - q_rate, 1 - q_rate)
        cross = q_rate * F.logsigmoid(p_logit) + (1 - q_rate) * F.logsigmoid(-p_logit)
        return (neg_entropy - cross).sum(-1)

    def entropy(self, x0: Tensor, t: Tensor) -> Tensor:
        """H_q(X_t|X_0 = x_0), summed over bits (nats). Paper: Eq. 14."""
        rate = self.marginal_rate(x0, t)
        return -(torch.special.xlogy(rate, rate) + torch.special.xlogy(1 - rate, 1 - rate)).sum(-1)

    def log_prior(self, x: Tensor) -> Tensor:
        """log π(x) (nats): the null model's log-likelihood."""
        return (x * math.log(self.p_pi) + (1 - x) * math.log(1 - self.p_pi)).sum(-1)

    def expected_log_prior(self, x0: Tensor, t: Tensor) -> Tensor:
        """E_{q(x_t|x_0)} log π(x_t) (nats). Paper: App. B.1 (−H_p(X_T))."""
        return self.log_prior(self.marginal_rate(x0, t))

    def prior_sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> Tensor:
        """x_T ~ π = Bernoulli(p_π)."""
        return (torch.rand(shape, generator=generator, device=device) < self.p_pi).float()

    @staticmethod
    def noise_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The auxiliary noise of one binomial step: uniform on [0, 1)."""
        return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
