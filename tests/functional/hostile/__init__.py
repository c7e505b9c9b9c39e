"""The hostile-function suite: one function per attack, each contained, reported, and harmless
to a well-behaved function that keeps answering meanwhile. Every known attack is listed here."""
