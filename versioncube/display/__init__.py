"""How results look: formatting of labels, sizes and times, one JSON conversion, text tables and
HTML. The bottom layer: it imports nothing else of versioncube, and everything may use it."""
