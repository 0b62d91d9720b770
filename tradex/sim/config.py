"""What a simulation run is: :class:`SimConfig` (seed, market size, pace) and its checks.

The order flow is a pure function of ``(seed, instruments, accounts, commands)`` where
``commands = rate * duration_s``; ``rate`` also sets the pacing and the spacing of the
commands' event times (``step_ns = 1e9 / rate``), so the same config and start time give
the same commands, byte for byte (docs/sim.md, "Determinism").
"""

from __future__ import annotations

import dataclasses

INSTRUMENTS_MAX = 8  # the instrument table (tradex/sim/market.py) has this many
ACCOUNTS_PER_INSTRUMENT_MIN = 10  # every agent role gets at least one account
ACCOUNTS_MAX = 100_000
RATE_MAX = 1_000_000  # commands/s asked for (the pipeline's limit is far below)
DURATION_S_MAX = 86_400.0
IN_FLIGHT_MAX = 100_000  # the command client's own bound (waiting_max)
SEED_MAX = (1 << 63) - 1
TAG_LENGTH_MAX = 32


class ConfigError(ValueError):
    """A SimConfig that cannot run (the CLI turns it into exit 2)."""


@dataclasses.dataclass(frozen=True)
class SimConfig:
    seed: int = 1
    instruments: int = 3
    accounts: int = 300  # trader accounts in all, split evenly over the instruments
    rate: float = 200.0  # commands per second (paced, open loop)
    duration_s: float = 30.0
    in_flight_max: int = 2_000  # commands sent but not yet answered
    start_ns: int | None = None  # event time of the first command (None: the wall clock)
    tag: str = "sim"  # command ids start with it: another tag = new commands on one prefix

    @property
    def commands(self) -> int:
        """Commands in the run (the flow is cut after this many)."""
        return max(1, round(self.rate * self.duration_s))

    @property
    def step_ns(self) -> int:
        """Event time between consecutive commands."""
        return max(1, round(1e9 / self.rate))

    @property
    def accounts_per_instrument(self) -> int:
        return self.accounts // self.instruments

    def check(self) -> None:
        """Raises :class:`ConfigError` naming the first bad field."""
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"seed must be 0..{SEED_MAX}, got {self.seed}")
        if not 1 <= self.instruments <= INSTRUMENTS_MAX:
            raise ConfigError(f"instruments must be 1..{INSTRUMENTS_MAX}, got {self.instruments}")
        low = ACCOUNTS_PER_INSTRUMENT_MIN * self.instruments
        if not low <= self.accounts <= ACCOUNTS_MAX:
            raise ConfigError(
                f"accounts must be {low}..{ACCOUNTS_MAX} for {self.instruments} instruments "
                f"(at least {ACCOUNTS_PER_INSTRUMENT_MIN} each), got {self.accounts}"
            )
        if not 0 < self.rate <= RATE_MAX:
            raise ConfigError(f"rate must be > 0 and <= {RATE_MAX} commands/s, got {self.rate}")
        if not 0 < self.duration_s <= DURATION_S_MAX:
            raise ConfigError(f"duration must be > 0 and <= {DURATION_S_MAX} s")
        if not 1 <= self.in_flight_max <= IN_FLIGHT_MAX:
            raise ConfigError(f"in_flight_max must be 1..{IN_FLIGHT_MAX}")
        if self.start_ns is not None and self.start_ns <= 0:
            raise ConfigError(f"start_ns must be > 0, got {self.start_ns}")
        if not (0 < len(self.tag) <= TAG_LENGTH_MAX and self.tag.isascii() and self.tag.isalnum()):
            raise ConfigError(f"tag must be 1..{TAG_LENGTH_MAX} ASCII letters or digits")
