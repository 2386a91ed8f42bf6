package hostlocal

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
)

// lockTimeout bounds the wait for another allocator; past it the caller gets "try again later".
const lockTimeout = 30 * time.Second

const lastReservedPrefix = "last_reserved_ip."

// store is one network's allocation directory, locked for the life of the value.
type store struct {
	dir string
	fd  int
}

// openStore creates dataDir/network if needed and takes the directory's flock (the same lock the
// reference plugin takes, so both can share a directory).
func openStore(ctx context.Context, dataDir, network string) (*store, error) {
	if network == "" || strings.ContainsAny(network, "/\x00") || network == "." || network == ".." {
		return nil, fmt.Errorf("network name %q cannot name a directory: %w", network, cni.ErrInvalidConfig)
	}
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create IPAM directory %s: %w: %w", dir, cni.ErrIO, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open IPAM directory %s: %w: %w", dir, cni.ErrIO, err)
	}
	if err := lock(ctx, fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock IPAM directory %s: %w", dir, err)
	}
	return &store{dir: dir, fd: fd}, nil
}

func lock(ctx context.Context, fd int) error {
	// Uncontended: one system call.
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%w: %w", cni.ErrIO, err)
	}
	// Contended: block in a goroutine so that the wait can be bounded. If the wait times out the
	// goroutine may still get the lock later; the process ends soon after and the kernel drops it.
	done := make(chan error, 1)
	go func() {
		for {
			err := unix.Flock(fd, unix.LOCK_EX)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			done <- err
			return
		}
	}()
	t := time.NewTimer(lockTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %w", cni.ErrIO, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("another allocator held the lock for %s: %w", lockTimeout, cni.ErrTryAgain)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", cni.ErrTryAgain, ctx.Err())
	}
}

func (s *store) close() {
	unix.Close(s.fd) // closing drops the flock
}

// owner is what an allocation file records.
type owner struct{ id, ifname string }

func encodeOwner(o owner) []byte { return []byte(o.id + "\r\n" + o.ifname) }

func decodeOwner(b []byte) owner {
	s := strings.TrimSpace(string(b))
	id, ifname, _ := strings.Cut(s, "\r\n")
	if ifname == "" {
		// files of very old reference versions hold only the container ID (and a newline)
		id, ifname, _ = strings.Cut(s, "\n")
	}
	return owner{id: strings.TrimSpace(id), ifname: strings.TrimSpace(ifname)}
}

// reserve claims addr for o. The O_EXCL create is the claim; the lock keeps readers from seeing
// the file before its content is written, and a crash between the two leaves an empty file that
// GC (whose valid list never names an empty owner) frees.
func (s *store) reserve(a netip.Addr, o owner) (bool, error) {
	p := filepath.Join(s.dir, a.String())
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("reserve %s: %w: %w", p, cni.ErrIO, err)
	}
	_, werr := f.Write(encodeOwner(o))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(p)
		return false, fmt.Errorf("write %s: %w: %w", p, cni.ErrIO, err)
	}
	return true, nil
}

func (s *store) taken(a netip.Addr) bool {
	var st unix.Stat_t
	return unix.Fstatat(s.fd, a.String(), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

func (s *store) release(a netip.Addr) error {
	if err := os.Remove(filepath.Join(s.dir, a.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s: %w: %w", a, cni.ErrIO, err)
	}
	return nil
}

func (s *store) lastReserved(set int) (netip.Addr, bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, lastReservedPrefix+strconv.Itoa(set)))
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	return a, err == nil
}

func (s *store) setLastReserved(set int, a netip.Addr) error {
	// A torn write only makes the next scan start elsewhere; it never makes an address
	// allocated twice, since reserve's O_EXCL decides that.
	p := filepath.Join(s.dir, lastReservedPrefix+strconv.Itoa(set))
	if err := os.WriteFile(p, []byte(a.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w: %w", p, cni.ErrIO, err)
	}
	return nil
}

// allocation is one file of the directory.
type allocation struct {
	addr  netip.Addr
	owner owner
}

// list returns every allocation in the directory.
func (s *store) list() ([]allocation, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", s.dir, cni.ErrIO, err)
	}
	var out []allocation
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // the lock, last_reserved_ip.N, anything foreign
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: %w: %w", e.Name(), cni.ErrIO, err)
		}
		out = append(out, allocation{addr: a, owner: decodeOwner(b)})
	}
	return out, nil
}

func (s *store) byOwner(o owner) ([]netip.Addr, error) {
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, al := range all {
		if al.owner.id == o.id && (al.owner.ifname == o.ifname || al.owner.ifname == "") {
			out = append(out, al.addr)
		}
	}
	return out, nil
}
