"""The repositories' one implementation: SQL that SQLite and PostgreSQL both run (see base.py)."""
