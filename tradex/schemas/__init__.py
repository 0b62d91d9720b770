"""TradeX schemas layer (see docs/design.md)."""
