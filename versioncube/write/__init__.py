"""Every operation that changes the cube, each a *change* handed to the one commit loop
(:func:`versioncube.store.commit.commit_change`) that returns its payload: today the append
pipeline (:mod:`~versioncube.write.append`) and the run of many appends
(:mod:`~versioncube.write.run`)."""
