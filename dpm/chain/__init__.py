"""The reverse chain run forward from noise: samples (``sampling``), and the chain multiplied by
a second distribution r(x) for inpainting and denoising (``posterior``, the paper's section 2.5)."""
