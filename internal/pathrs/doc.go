// Package pathrs resolves and creates paths inside a directory tree that the caller does not trust,
// such as a container's root filesystem: no "..", absolute symlink or magic link can lead outside it.
//
// It relies on openat2(2) with RESOLVE_IN_ROOT, so a symlink planted in the tree is followed as if the
// tree were "/", and it hands back O_PATH descriptors so that the caller acts on exactly what was
// resolved (mounting onto /proc/self/fd/N rather than onto a path that could be swapped afterwards).
// It must not follow anything with plain path strings.
package pathrs
