"""The limit of K at a model's T and schedule: the best K any reverse kernel of the model's family
can reach, with the true data distribution's exact posterior moments.

K = −Σ_{t=2}^T E KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) + terms that do not depend on p
(Eq. 14), and E_{x_0|x_t} KL(q(x_{t−1}|x_t, x_0) ‖ p) = KL(q(x_{t−1}|x_t) ‖ p) + const, so each
step's best kernel within a family is the one closest to the true reverse q(x_{t−1}|x_t):

* Gaussian diffusion, diagonal Gaussian steps (the model's family): the moments of q(x_{t−1}|x_t),
  mean E[x_{t−1}|x_t] and per-dimension variance Var[x_{t−1,i}|x_t] (moment matching).
* Binomial diffusion, factorised (per-bit Bernoulli) steps: the true marginal posterior
  q(x_{t−1,i} = 1|x_t) of each bit.

The last step stays tied to the forward kernel (App. B.2), as in the model. K* is then the bound
of ``dpm/core/bound.py`` with these kernels; its gap to the data's true log-likelihood is what T and
the step's family leave, the gap between K* and the model's K what the network leaves.

Both kernels take the data as a finite mixture: Gaussian components N(c_j, τ²) with weights w_j
(the swiss roll: its curve on a θ grid with trapezoid weights; a single component: Gaussian data,
whose exact reverse is Gaussian), or distinct binary sequences with their probabilities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion


def _at(table: Tensor, t: Tensor, x: Tensor) -> Tensor:
    """``table[t − 1]`` (float64), shaped to broadcast against x (t's shape a prefix of x's)."""
    v = table.double()[t - 1]
    return v.reshape(t.shape + (1,) * (x.ndim - t.ndim))


class GaussianMixtureReverse:
    """p*(x_{t−1}|x_t) = N(E[x_{t−1}|x_t], diag Var[x_{t−1}|x_t]) for data x_0 ~ Σ_j w_j N(c_j, diag τ²).

    Given component j, x_t ~ N(√ᾱ_t c_j, v_t), v_t = ᾱ_t τ² + 1 − ᾱ_t, so the posterior weight of j
    is ∝ w_j N(x_t; √ᾱ_t c_j, v_t) and x_0 | x_t, j is Gaussian with mean
    m_j = c_j + τ²√ᾱ_t (x_t − √ᾱ_t c_j)/v_t and variance s² = τ²(1 − ᾱ_t)/v_t. With
    q(x_{t−1}|x_t, x_0) = N(a_t x_0 + b_t x_t, σ²_t): E[x_{t−1}|x_t] = a_t E[x_0|x_t] + b_t x_t,
    Var[x_{t−1,i}|x_t] = σ²_t + a_t² Var[x_{0,i}|x_t]. At t = 1 (σ²_1 = 0, a_1 = 1) it is the exact
    posterior of x_0.

    Args:
        centres: (J, D) c_j in model units.
        log_weights: (J,) log w_j (normalised here).
        tau2: (D,) or scalar τ², each component's variance per dimension.

    Paper: Eq. 14 (the KL terms it minimises); App. A (q's posterior).
    """

    def __init__(self, centres: Tensor, log_weights: Tensor, tau2: Tensor | float):
        self.centres = centres.double()
        self.log_weights = torch.log_softmax(log_weights.double(), 0)
        self.tau2 = torch.as_tensor(tau2, dtype=torch.float64)

    def posterior_x0(self, process: GaussianDiffusion, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and per-dimension variance of x_0 | x_t under the data (float64, xt's shape)."""
        xt = xt.double()
        root = _at(process.alpha_bar, t, xt).sqrt().unsqueeze(-1)  # (..., 1, 1) against (..., J, D)
        v = root ** 2 * self.tau2 + 1 - root ** 2
        residual = xt.unsqueeze(-2) - root * self.centres  # (..., J, D)
        log_r = self.log_weights - 0.5 * (residual ** 2 / v + torch.log(v)).sum(-1)  # (..., J)
        r = torch.softmax(log_r, -1).unsqueeze(-1)
        m = self.centres + self.tau2 * root * residual / v
        mean = (r * m).sum(-2)
        spread = (r * (m - mean.unsqueeze(-2)) ** 2).sum(-2)
        return mean, (self.tau2 * (1 - root ** 2) / v).squeeze(-2) + spread

    def __call__(self, process: GaussianDiffusion, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, variance) of p*(x_{t−1}|x_t), float64, xt's shape."""
        mean_x0, var_x0 = self.posterior_x0(process, xt, t)
        coef_x0 = _at(process.posterior_coef_x0, t, xt)
        mean = coef_x0 * mean_x0 + _at(process.posterior_coef_xt, t, xt) * xt.double()
        return mean, _at(process.posterior_var, t, xt) + coef_x0 ** 2 * var_x0


class BernoulliMixtureReverse:
    """p*(x_{t−1,i} = 1|x_t) = q(x_{t−1,i} = 1|x_t), the true marginal posterior of each bit, for data
    x_0 drawn from a finite set of sequences s_j with probabilities w_j:

        q(x_{t−1,i} = 1|x_t) = Σ_j q(s_j|x_t) q(x_{t−1,i} = 1|x_{t,i}, x_{0,i} = s_{j,i}),
        q(s_j|x_t) ∝ w_j Π_i q(x_{t,i}|x_{0,i} = s_{j,i}),

    the bits being independent given x_0 under q. Returned as a logit, as ``p_params``.

    Args:
        sequences: (J, D) the distinct sequences, 0/1.
        log_weights: (J,) their log-probabilities (normalised here).

    Paper: Eq. 14; Table C.1 (the binomial forward step).
    """

    def __init__(self, sequences: Tensor, log_weights: Tensor):
        self.sequences = sequences.double()
        self.log_weights = torch.log_softmax(log_weights.double(), 0)

    def __call__(self, process: BinomialDiffusion, xt: Tensor, t: Tensor) -> Tensor:
        shape = xt.shape[:-1] + self.sequences.shape  # (..., J, D)
        xt, s = xt.double().unsqueeze(-2).expand(shape), self.sequences.expand(shape)
        t_j = t.reshape(t.shape + (1,) * (len(shape) - 1 - t.ndim)).expand(shape[:-1])  # (..., J)
        rate = process.marginal_rate(s, t_j)  # q(x_t = 1|x_0 = s_j)
        log_like = (torch.special.xlogy(xt, rate) + torch.special.xlogy(1 - xt, 1 - rate)).sum(-1)
        log_r = torch.log_softmax(self.log_weights + log_like, -1).unsqueeze(-1)  # (..., J, 1)
        post = process.q_posterior(s, xt, t_j)  # q(x_{t−1} = 1|x_t, x_0 = s_j)
        log_one = torch.logsumexp(log_r + torch.log(post), -2)
        log_zero = torch.logsumexp(log_r + torch.log1p(-post), -2)
        return log_one - log_zero


def curve_mixture(curve, theta_min: float, theta_max: float, n_nodes: int) -> tuple[Tensor, Tensor]:
    """A curve with a uniform parameter θ as mixture centres: c_j = curve(θ_j) on ``n_nodes`` evenly
    spaced θ_j with trapezoid weights (the roll's density is a 1-D integral over θ).

    Args:
        curve: θ (n,) float64 tensor → (n, D) points in model units.

    Returns:
        centres (n_nodes, D), log-weights (n_nodes,).
    """
    theta = torch.linspace(theta_min, theta_max, n_nodes, dtype=torch.float64)
    weights = torch.ones(n_nodes, dtype=torch.float64)
    weights[[0, -1]] = 0.5
    return curve(theta), torch.log(weights / weights.sum())

