"""Cross-sell, upsell, downsell and bundle recommendations for Django shops."""

__version__ = "0.1.0.dev0"
