// Package manifest parses and validates the manifests a registry accepts: OCI image manifests and
// indexes (image-spec v1.1) and Docker's schema 2 manifests and manifest lists, which have the same
// shape and are read with the image-spec Go types.
//
// It answers the questions the registry asks of a manifest: is it well formed, which media type
// is it, which blobs and manifests must exist before it may be stored, what is its subject, and
// what does the referrers API say about it. It does no I/O and keeps no state; the storage layer
// checks that what a manifest references exists.
package manifest
