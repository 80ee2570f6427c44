"""dpm: diffusion probabilistic models (Sohl-Dickstein et al. 2015), reproduced.

The library: the diffusion math (``diffusion``, ``schedules``, ``bound``), the networks
(``nets``), models (``model``), training (``train``), evaluation, sampling and the toy data.
"""
