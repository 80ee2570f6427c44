"""What every dataset shares: the split on disk, the scaling and the image codec. The datasets
themselves, and the checksummed fetch of raw files, are in ``dpm.datasets``."""
