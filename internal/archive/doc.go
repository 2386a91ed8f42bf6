// Package archive applies image layers, tar streams as the OCI image-spec describes them, to
// directories: a flattened root filesystem (whiteouts delete what they hide) or one overlayfs layer
// directory (whiteouts become overlayfs's character devices and opaque xattrs).
//
// It owns the safety of extraction: every name is resolved inside the target with openat2
// RESOLVE_IN_ROOT, so no entry can write outside it, whether through "..", an absolute name, or a
// symlink planted by this layer or an earlier one; the last component is never followed. It does not
// decompress (see Decompress) or verify digests: callers hash what they read.
package archive
