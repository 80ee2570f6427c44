"""Tools run by hand, outside the pipeline, each with its command line (``python -m tools.<name>``
from the repository root): the benchmark of every model, the pipeline's overhead, the Parzen
estimate of the "perfect model". They use the library (dpm/); nothing in it imports them."""
