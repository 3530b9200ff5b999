"""The shared index on PostgreSQL with pgvector (see docs/scale-out.md)."""
