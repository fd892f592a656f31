"""One module per method: each exposes ``build(config, data) -> Recipe``."""
