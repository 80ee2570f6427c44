"""What every stage reads: params.yaml's strict loader (``params``), the sections shared by the
library (``sections``), the datasets (``registry``) and the whole validated file (``config``);
atomic file writes, provenance and the device."""
