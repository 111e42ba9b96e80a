"""Tools that drive the product from outside (not deployed): `python -m tools.replay`."""
