"""Envelopes: how a message sits on each broker (SPEC.md §5). One module per broker."""
