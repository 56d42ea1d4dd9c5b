"""What the cube looks like and how it stores its data: the cube's outline, validating a slice
against it, tailoring a slice to the configured outline, encodings, codecs and attributes."""
