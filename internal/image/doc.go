// Package image reads and writes OCI images (image-spec): where they come from (the local content
// store, an OCI image layout directory, an oci-archive or docker-archive tar, named with skopeo's
// transport syntax), how one platform's manifest and config are resolved from them, how their
// layers are unpacked into a directory, and how an image config becomes a runtime bundle.
//
// It does not talk to registries (internal/registry/client does) and does not keep unpacked layers
// (internal/snapshot does).
package image
