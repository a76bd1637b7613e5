"""Shared test doubles (clearly fakes: never used by the product)."""
