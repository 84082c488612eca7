"""Model definitions: a config dataclass plus a module per family (the timm/transformers habit)."""
