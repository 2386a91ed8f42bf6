package runtime

import (
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mount"
)

// idmappedBind bind-mounts src onto dst through the mount's own uid/gid mappings (an idmapped mount):
// a detached clone of src gets MOUNT_ATTR_IDMAP with a user namespace holding the mappings, then is
// moved into place.
// The runtime half made the user namespace (usernsWithMappings) and passed it as descriptor usernsFD.
func idmappedBind(opts *mount.Options, src string, dst *os.File, usernsFD int) error {
	treeFlags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	setFlags := uint(unix.AT_EMPTY_PATH)
	if opts.Recursive() {
		treeFlags |= unix.AT_RECURSIVE
		setFlags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, treeFlags)
	if err != nil {
		return fmt.Errorf("idmap: open_tree %s: %w", src, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(usernsFD)}
	if err := unix.MountSetattr(tree, "", setFlags, attr); err != nil {
		return fmt.Errorf("idmap: the kernel refused an idmapped mount of %s (its filesystem may not support it): %w", src, err)
	}
	if err := unix.MoveMount(tree, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("idmap: move_mount: %w", err)
	}
	return nil
}

// usernsWithMappings returns a descriptor of a new user namespace with the given mappings, for an
// idmapped mount. A child is started in it (stopped by ptrace at its exec so that it runs nothing), the
// namespace is opened through /proc, and the child is killed. It runs in the runtime half, where /proc
// shows the child's pid; the caller must have locked its goroutine to its thread (the tracer).
func usernsWithMappings(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	conv := func(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, len(ms))
		for i, m := range ms {
			out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
		}
		return out
	}
	attr := &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: conv(uids),
			GidMappings: conv(gids),
			Ptrace:      true,
			Pdeathsig:   syscall.SIGKILL,
		},
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"berth-userns"}, attr)
	if err != nil {
		return nil, fmt.Errorf("start a process in a new user namespace: %w", err)
	}
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, err
	}
	return f, nil
}
