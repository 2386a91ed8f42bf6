// Package reference parses and validates the identifiers that appear in distribution-spec URLs:
// repository names, tags, digests and the <reference> of a manifest path (a tag or a digest), and
// the image references clients write (HOST/NAME:TAG@DIGEST, ParseImage).
//
// It implements the grammar of the distribution-spec ("Pulling manifests" and "Content discovery")
// by hand, without regular expressions, because every request goes through it; the fuzz targets
// check it against the spec's own regular expressions. It owns no state and does no I/O.
//
// Everything it accepts is also safe as a path below a storage root: a name component can never be
// empty, ".", ".." or start with "_" (which the storage layout uses for its own directories), and a
// tag can never contain "/" or start with ".".
package reference
