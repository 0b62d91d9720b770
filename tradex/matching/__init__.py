"""TradeX matching layer (see docs/design.md)."""
