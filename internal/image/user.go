package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/pathrs"
)

// User is an image's user resolved against its /etc/passwd and /etc/group.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser resolves the config's User field ("", "user", "uid", "user:group", "uid:gid" and
// mixes) inside rootfs, as Docker and the image-spec do: a name must be in the image's files, a
// number need not be; with no group, the user's primary group from /etc/passwd (else 0); the
// supplementary groups are those /etc/group lists the user in. Files are read inside rootfs,
// symlinks resolved within it.
func ResolveUser(rootfs, spec string) (User, error) {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return User{}, fmt.Errorf("rootfs: %w", err)
	}
	defer root.Close()
	passwd, err := readDB(root, "etc/passwd", parsePasswd)
	if err != nil {
		return User{}, err
	}
	groups, err := readDB(root, "etc/group", parseGroup)
	if err != nil {
		return User{}, err
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	u := User{Home: "/"}
	var name string
	var pw *passwdEntry
	switch {
	case userPart == "":
		pw = findPasswd(passwd, func(e passwdEntry) bool { return e.uid == 0 })
	default:
		if id, err := strconv.ParseUint(userPart, 10, 32); err == nil {
			u.UID = uint32(id)
			pw = findPasswd(passwd, func(e passwdEntry) bool { return e.uid == u.UID })
		} else {
			pw = findPasswd(passwd, func(e passwdEntry) bool { return e.name == userPart })
			if pw == nil {
				return User{}, fmt.Errorf("config.User %q: no user %q in the image's /etc/passwd: %w", spec, userPart, errdefs.ErrInvalidArgument)
			}
		}
	}
	if pw != nil {
		u.UID, u.GID, name = pw.uid, pw.gid, pw.name
		if pw.home != "" {
			u.Home = pw.home
		}
	}
	if hasGroup {
		if id, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			var found bool
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return User{}, fmt.Errorf("config.User %q: no group %q in the image's /etc/group: %w", spec, groupPart, errdefs.ErrInvalidArgument)
			}
		}
	}
	if name != "" && !hasGroup {
		for _, g := range groups {
			if g.gid == u.GID {
				continue
			}
			for _, m := range g.members {
				if m == name {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
					break
				}
			}
		}
	}
	return u, nil
}

func findPasswd(es []passwdEntry, f func(passwdEntry) bool) *passwdEntry {
	for i := range es {
		if f(es[i]) {
			return &es[i]
		}
	}
	return nil
}

// readDB reads one of the image's account files; a missing one is empty.
func readDB[T any](root *os.File, name string, parse func(io.Reader) []T) ([]T, error) {
	f, err := pathrs.Open(root, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the image's /%s: %w", name, err)
	}
	defer f.Close()
	return parse(io.LimitReader(f, 16<<20)), nil
}

// parsePasswd reads name:password:uid:gid:gecos:home:shell lines; malformed ones are skipped, as
// libc does.
func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5]})
	}
	return out
}

// parseGroup reads name:password:gid:member,member lines.
func parseGroup(r io.Reader) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}
