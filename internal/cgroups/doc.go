// Package cgroups places a container's processes in control groups and applies the
// runtime-spec linux.resources to them, with the cgroupfs driver, on cgroup v1 (including
// the "hybrid" layout where a cgroup2 hierarchy is mounted beside the v1 ones, usually at
// /sys/fs/cgroup/unified) and on a pure cgroup v2 host.
//
// What it owns:
//   - Resolving linux.cgroupsPath to one directory per hierarchy (New), and rebuilding that
//     from the runtime's state file (Load). Hierarchies are discovered from
//     /proc/self/mountinfo and the controllers of each from its super options; nothing about
//     the layout is hard-coded, so co-mounted controllers (cpu,cpuacct) and separately mounted
//     ones both work.
//   - Creating and removing those directories, moving processes into them, listing,
//     freezing, signalling and killing the processes in them.
//   - Writing every field of specs.LinuxResources in the form the kernel expects, for v1 and
//     v2, including the cgroup v2 device filter, which is an eBPF program this package
//     assembles and attaches with bpf(2).
//   - Reading the statistics that `berth-runtime events --stats` prints, in the JSON shape
//     `runc events --stats` uses.
//
// What it must not do:
//   - Touch any cgroup other than the container's own directories and, on creation, their
//     missing ancestors (v1 cpuset values are copied into them; on v2 controllers are enabled
//     in the ancestors' cgroup.subtree_control, because the kernel requires it). Destroy
//     removes only the container's directories and whatever is below them, never a parent
//     such as /berth, which other containers share.
//   - Log, exit or panic: it returns errors (wrapped with %w, naming the spec field and the
//     file) and warnings (for deprecated fields that the kernel no longer offers) and lets
//     the runtime report them. Unavailable controllers are reported with ErrNotAvailable,
//     invalid values with ErrInvalid; nothing pretends to succeed.
//   - Talk to systemd: the systemd driver is not implemented, and New says so.
//   - Hold global state: the filesystem root and the /proc/self files are fields of the
//     Manager, so tests can point them at a fake tree.
//
// Blocking: Freeze, Signal and Destroy wait for the kernel (tasks to stop, processes to exit
// before rmdir stops failing with EBUSY) and take a context; they retry with backoff until it
// is done or a bound of a few seconds passes, so a stuck task makes `pause` or `delete`
// fail rather than hang. The other methods do single reads and writes of cgroupfs files.
//
// Concurrency: a Manager holds only paths; its methods may be called from several goroutines,
// but two callers updating the same cgroup at once get the last writer's values, as with any
// cgroupfs writer. The runtime serialises operations on one container with its state lock.
package cgroups
