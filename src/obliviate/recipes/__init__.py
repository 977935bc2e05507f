"""The recipes, one YAML file per base model (``<model>.yaml``): how the target and oracle
are fine-tuned and how ``obliviate unlearn`` (by default) and the demo unlearn. Read by
``obliviate.train.recipes``; shipped as package data so an installed ``obliviate`` finds
them."""
