"""Pipeline stages: one thin module per stage of dvc.yaml (parse arguments, load, call dpm, write)."""
