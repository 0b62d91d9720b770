"""TradeX infra layer (see docs/design.md)."""
