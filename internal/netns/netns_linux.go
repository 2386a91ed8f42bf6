package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNotExist is returned (wrapped) when the path does not name a network namespace that exists.
var ErrNotExist = errors.New("network namespace does not exist")

// NS is an open network namespace.
type NS struct {
	fd   int
	path string
}

// Open opens the network namespace at path (a bind mount such as /run/netns/x, or
// /proc/PID/ns/net). It fails with ErrNotExist when the path is missing or is not a network
// namespace (a stale bind mount point left by a deleted namespace reads as a plain file).
func Open(path string) (*NS, error) {
	if path == "" {
		return nil, fmt.Errorf("open netns: empty path: %w", ErrNotExist)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("open netns %s: %w", path, ErrNotExist)
		}
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("statfs netns %s: %w", path, err)
	}
	// A namespace file lives on nsfs (or procfs for /proc/PID/ns/net on old kernels).
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		unix.Close(fd)
		return nil, fmt.Errorf("open netns %s: not a namespace file (fs type %#x): %w", path, st.Type, ErrNotExist)
	}
	return &NS{fd: fd, path: path}, nil
}

// Fd is the namespace's descriptor, valid until Close.
func (n *NS) Fd() int { return n.fd }

// Path is the path the namespace was opened from.
func (n *NS) Path() string { return n.path }

// Close releases the descriptor. It is safe to call more than once.
func (n *NS) Close() error {
	if n == nil || n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	return err
}

// Do runs fn with the calling goroutine's OS thread inside the namespace, and switches the thread
// back afterwards. fn must not start goroutines that expect to be in the namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine: if switching back fails, its thread stays locked and is discarded when
	// the goroutine returns, so no other goroutine ever runs in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", n.path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("setns back to the original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Same reports whether two namespaces are the same namespace (same nsfs inode).
func (n *NS) Same(other *NS) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(n.fd, &a); err != nil {
		return false, fmt.Errorf("fstat netns %s: %w", n.path, err)
	}
	if err := unix.Fstat(other.fd, &b); err != nil {
		return false, fmt.Errorf("fstat netns %s: %w", other.path, err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// Create makes a new network namespace pinned at dir/name by a bind mount, the way `ip netns add`
// does, and returns its path. Tests use it; delete it with Remove.
func Create(dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create netns dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return "", fmt.Errorf("create netns pin %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// This thread gets the new namespace and is never unlocked: it is discarded with the
		// goroutine, so the new namespace never leaks into the rest of the process.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount %s on %s: %w", src, path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// Remove unmounts and deletes a namespace pinned by Create (or by `ip netns add`). It is not an
// error if it does not exist.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns pin %s: %w", path, err)
	}
	return nil
}

// Netlink opens a netlink handle whose sockets live in the namespace: requests on it act there
// from any thread, so most work needs no namespace switch at all.
func (n *NS) Netlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(n.fd), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in netns %s: %w", n.path, err)
	}
	return h, nil
}
