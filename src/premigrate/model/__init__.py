"""Pure model: no I/O. Versions, durations, URLs, migration files, SQL splitting, history and the plan."""
