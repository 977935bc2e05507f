"""The demo's recipes, one YAML file per base model (``<model>.yaml``): how it fine-tunes
the target and oracle and how it unlearns. Read by ``obliviate.train.recipes``; shipped
as package data so an installed ``obliviate`` finds them."""
