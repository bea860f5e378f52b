"""Use cases. Each opens a unit of work, applies domain rules, records audit + domain events, commits."""
