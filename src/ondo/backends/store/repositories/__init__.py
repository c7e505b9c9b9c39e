"""Each domain's repository Protocols and the records they return (contracts level: the domain
imports them, sql/ implements them, neither imports the other's side)."""
