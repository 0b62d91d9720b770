"""The auditor's tools: verify a log or an archive, time travel, signed checkpoints, proofs.

See docs/audit.md.
"""
