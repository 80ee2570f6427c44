"""Training a model (``train``), across processes (``distributed``), with its memory checked
before it starts and its curves in TensorBoard."""
