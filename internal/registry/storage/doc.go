// Package storage is the registry's content store on a local filesystem: blobs by digest,
// repositories (blob links, manifests, tags, referrers), uploads in progress, and garbage
// collection that runs while the registry serves.
//
// It owns one directory tree (the root). Every write is atomic: content goes to a temporary file
// that is fsynced, renamed into place, and its directory fsynced, so that a crash at any point
// leaves either the old state or the new one, and a blob or manifest is visible only once it is
// complete and verified. It does not speak HTTP; the registry server maps its errors to the
// distribution-spec's error codes. It must not be pointed at a network filesystem whose flock is
// advisory-only across hosts: several processes may share a root on one host, no more.
//
// The layout, the crash design and the garbage collection protocol are described in
// docs/architecture.md ("Registry").
package storage
