"""The cube's history: the commit record and the slice ledger, refs, log, tags, branches,
rollback and promote, diff, verify, retention (gc) and the one-screen summary of a version."""
