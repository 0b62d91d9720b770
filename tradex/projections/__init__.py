"""TradeX projections layer (see docs/design.md)."""
