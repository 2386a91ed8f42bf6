// Package client is a distribution-spec client: it pulls from and pushes to any registry that
// speaks the OCI distribution-spec (berth's own, Distribution, zot, the public clouds' registries).
//
// It owns the wire side of image transfer: the HTTP endpoints, the WWW-Authenticate challenge flow
// (Basic, and Docker bearer tokens cached per scope), plain HTTP only for loopback and explicitly
// insecure hosts, retries with backoff, resumable chunked uploads and ranged downloads, digest
// verification of everything it receives, and the walk of an image (index → manifests → config and
// layers) with platform selection and bounded concurrency.
//
// It does not store anything: Pull writes into a Sink and Push reads from a Source, two small
// interfaces the local content store implements. It does not render progress; it reports bytes per
// descriptor to a callback. It has no default registry: a reference without a host is an error
// unless the caller names a default host.
package client
