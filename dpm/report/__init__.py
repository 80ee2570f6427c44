"""Figures and learning curves, and the paper's own values for Tables 1 and 2 and its figures."""
