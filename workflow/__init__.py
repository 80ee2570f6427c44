"""The machinery beside the Snakefile: the bridge that derives Snakemake's rules from dvc.yaml
(``dvc_bridge``), the cluster resources (``cluster``), params.yaml's composition from conf/
(``params``) and the Hydra plugin DVC loads when it composes (``hydra_plugins``)."""
