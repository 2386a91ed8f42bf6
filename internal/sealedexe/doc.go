// Package sealedexe gives the runtime a copy of its own executable that nothing can write to, to exec
// container processes from.
//
// A container process starts as the runtime binary (re-executed to set the container up) and only later
// execs the container's program. If the container's root could reach that binary through
// /proc/<pid>/exe and write to it once the runtime exits, it would replace the host's runtime
// (CVE-2019-5736). Executing from a detached read-only mount makes every such open fail with EROFS.
// runc 1.1 copies itself into a sealed memfd on every start instead (its documented start-up cost); the
// detached mount costs about 40 µs here and no memory, and the memfd copy remains the fallback where
// open_tree(2) or mount_setattr(2) are refused.
//
// The package must not keep the mount attached anywhere: it lives only as long as a descriptor to it.
package sealedexe
