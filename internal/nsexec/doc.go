// Package nsexec puts a process into its container's namespaces before the Go runtime starts.
//
// It owns the C constructor (nsexec.c) that every berth-runtime process runs first, and the Go side of
// its protocol: the bootstrap message the runtime sends (which namespaces to join by path, which to
// create, time offsets, the cgroup to fork into) and the length-prefixed frames, with descriptors,
// that the runtime and the container process exchange on their sync socket. In the runtime half the
// constructor also starts the container process ahead (Prespawned), and sends its first frames
// from the container's state (exec) or the bundle's config (create, run; early.c). It must not do
// anything else in C: mounts, credentials and the rest of the container's setup happen in Go once
// the process is in its namespaces (package runtime).
//
// Importing this package is what links the constructor into a binary; in a binary that never sets
// EnvSyncFD it reads /proc/self/cmdline, and starts a process only for berth-runtime's create, run and
// exec.
package nsexec
