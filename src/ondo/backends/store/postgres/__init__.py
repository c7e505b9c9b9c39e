"""The PostgreSQL store (`pip install 'ondo[postgres]'`): engine.py and migrations.py."""
