// Package runtime implements the OCI runtime-spec for Linux: the lifecycle of containers (create,
// start, kill, delete, state) and of extra processes in them (exec), on real namespaces, cgroups and
// mounts.
//
// Two halves live here. The runtime half runs in the berth-runtime command: it validates config.json,
// keeps each container's state under the state root, places processes in cgroups and runs the hooks
// that belong to the runtime namespace. The container half runs in the re-executed binary once the
// nsexec constructor has put it into the container's namespaces: it builds the root filesystem, runs
// the hooks that belong to the container namespace, drops privileges and execs the user's program.
// They talk over a socket pair in length-prefixed JSON frames (package nsexec), and the container
// half waits for `start` on a FIFO in the state directory, as runc does, so that no runtime process
// needs to stay alive between commands.
//
// The package must not print or exit: the CLI in cmd/berth-runtime does, from the errors returned here.
package runtime
