"""What every stage shares about the log: where records live and how they are read."""
