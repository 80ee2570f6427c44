"""Datasets: one module per dataset (generation or fetch, decoding) plus the shared scaling."""
