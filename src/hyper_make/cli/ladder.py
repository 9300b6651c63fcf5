"""``hyper-make ladder``: print the two-sided ladder for a market (the embedded default, or a TOML config)."""
