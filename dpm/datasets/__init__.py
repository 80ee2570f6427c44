"""One module per dataset (generation or fetch, and decoding into a ``dpm.data`` split), and the
checksummed fetch of raw files (``fetch``: the official address, or an offline mirror)."""
