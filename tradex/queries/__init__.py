"""TradeX queries layer (see docs/design.md)."""
