"""dpm: diffusion probabilistic models (Sohl-Dickstein et al. 2015), reproduced.

The library, in layers (a module imports from its own folder and those listed before it;
tests/test_layers.py checks it):

- ``base``: params.yaml's loader and sections, the datasets' registry, atomic writes, provenance,
  the device;
- ``data``: the split on disk, the scaling, the image codec; ``datasets``: one module per dataset
  and the checksummed fetch;
- ``core``: the paper's model: schedules, diffusions, the bound, networks, the model, its
  objective and estimate K, an experiment (a model of a section);
- ``chain``: sampling and the posterior chain; ``estimate``: L_k and the KL per step, the best K of
  a family, the Parzen estimate;
- ``run``: training, across processes;
- ``report``: figures, learning curves and the paper's own values.

At the top: ``studies`` (the studies' sections), ``synthetic`` (data for the tools) and
``gpu_check`` (``python -m dpm.gpu_check``).
"""
