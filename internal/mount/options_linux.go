package mount

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Options is a parsed option list.
type Options struct {
	Flags       uintptr   // MS_* flags to set
	Cleared     uintptr   // MS_* flags explicitly turned off ("rw", "suid", ...)
	Propagation []uintptr // MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, each maybe with MS_REC
	AttrSet     uint64    // MOUNT_ATTR_* to set recursively ("rro", "rnosuid", ...)
	AttrClr     uint64    // MOUNT_ATTR_* to clear recursively ("rrw", "rsuid", ...)
	Data        []string  // filesystem-specific options, passed to mount(2) joined by commas
	IDMap       bool      // "idmap" or "ridmap": map ownership through the mount's uid/gid mappings
	TmpCopyUp   bool      // copy what the destination held into the new tmpfs
}

// Bind reports whether the options ask for a bind mount.
func (o *Options) Bind() bool { return o.Flags&unix.MS_BIND != 0 }

// Recursive reports whether a bind mount takes the submounts with it.
func (o *Options) Recursive() bool { return o.Flags&unix.MS_REC != 0 }

type flagOpt struct {
	flag  uintptr
	clear bool
}

var flagOpts = map[string]flagOpt{
	"async": {unix.MS_SYNCHRONOUS, true}, "atime": {unix.MS_NOATIME, true}, "bind": {unix.MS_BIND, false},
	"defaults": {0, false}, "dev": {unix.MS_NODEV, true}, "diratime": {unix.MS_NODIRATIME, true},
	"dirsync": {unix.MS_DIRSYNC, false}, "exec": {unix.MS_NOEXEC, true}, "iversion": {unix.MS_I_VERSION, false},
	"lazytime": {unix.MS_LAZYTIME, false}, "loud": {unix.MS_SILENT, true}, "mand": {unix.MS_MANDLOCK, false},
	"noatime": {unix.MS_NOATIME, false}, "nodev": {unix.MS_NODEV, false}, "nodiratime": {unix.MS_NODIRATIME, false},
	"noexec": {unix.MS_NOEXEC, false}, "noiversion": {unix.MS_I_VERSION, true}, "nolazytime": {unix.MS_LAZYTIME, true},
	"nomand": {unix.MS_MANDLOCK, true}, "norelatime": {unix.MS_RELATIME, true}, "nostrictatime": {unix.MS_STRICTATIME, true},
	"nosuid": {unix.MS_NOSUID, false}, "nosymfollow": {unix.MS_NOSYMFOLLOW, false}, "rbind": {unix.MS_BIND | unix.MS_REC, false},
	"relatime": {unix.MS_RELATIME, false}, "remount": {unix.MS_REMOUNT, false}, "ro": {unix.MS_RDONLY, false},
	"rw": {unix.MS_RDONLY, true}, "silent": {unix.MS_SILENT, false}, "strictatime": {unix.MS_STRICTATIME, false},
	"suid": {unix.MS_NOSUID, true}, "sync": {unix.MS_SYNCHRONOUS, false}, "symfollow": {unix.MS_NOSYMFOLLOW, true},
}

var propagationOpts = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

type attrOpt struct {
	attr  uint64
	clear bool
}

var attrOpts = map[string]attrOpt{
	"rro": {unix.MOUNT_ATTR_RDONLY, false}, "rrw": {unix.MOUNT_ATTR_RDONLY, true},
	"rnosuid": {unix.MOUNT_ATTR_NOSUID, false}, "rsuid": {unix.MOUNT_ATTR_NOSUID, true},
	"rnodev": {unix.MOUNT_ATTR_NODEV, false}, "rdev": {unix.MOUNT_ATTR_NODEV, true},
	"rnoexec": {unix.MOUNT_ATTR_NOEXEC, false}, "rexec": {unix.MOUNT_ATTR_NOEXEC, true},
	"rnodiratime": {unix.MOUNT_ATTR_NODIRATIME, false}, "rdiratime": {unix.MOUNT_ATTR_NODIRATIME, true},
	"rnosymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, false}, "rsymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, true},
}

// The atime attributes are one field in mount_setattr(2), not bits: choosing a mode clears the field
// and sets the mode. "ratime" (no noatime) falls back to the kernel's default, relatime; "rnorelatime"
// (no relatime) means strictatime.
var atimeOpts = map[string]uint64{
	"rrelatime": unix.MOUNT_ATTR_RELATIME, "ratime": unix.MOUNT_ATTR_RELATIME,
	"rnoatime": unix.MOUNT_ATTR_NOATIME, "rstrictatime": unix.MOUNT_ATTR_STRICTATIME,
	"rnorelatime": unix.MOUNT_ATTR_STRICTATIME,
}

// Parse parses a mount's options. An option that is neither a flag nor a known word is filesystem
// data; Parse rejects only what cannot be meant (empty options, commas or NULs inside one option).
func Parse(opts []string) (*Options, error) {
	o := &Options{}
	for i, opt := range opts {
		switch {
		case opt == "":
			return nil, fmt.Errorf("options[%d]: empty option", i)
		case strings.ContainsAny(opt, ",\x00"):
			return nil, fmt.Errorf("options[%d]: %q contains a comma or NUL (give each option separately)", i, opt)
		}
		if f, ok := flagOpts[opt]; ok {
			if f.clear {
				o.Flags &^= f.flag
				o.Cleared |= f.flag
			} else {
				o.Flags |= f.flag
				o.Cleared &^= f.flag
			}
			continue
		}
		if p, ok := propagationOpts[opt]; ok {
			o.Propagation = append(o.Propagation, p)
			continue
		}
		if mode, ok := atimeOpts[opt]; ok {
			o.AttrSet = o.AttrSet&^unix.MOUNT_ATTR__ATIME | mode
			o.AttrClr |= unix.MOUNT_ATTR__ATIME
			continue
		}
		if a, ok := attrOpts[opt]; ok {
			if a.clear {
				o.AttrSet &^= a.attr
				o.AttrClr |= a.attr
			} else {
				o.AttrSet |= a.attr
				o.AttrClr &^= a.attr
			}
			continue
		}
		switch opt {
		case "idmap", "ridmap":
			o.IDMap = true
			continue
		case "tmpcopyup":
			o.TmpCopyUp = true
			continue
		}
		o.Data = append(o.Data, opt)
	}
	return o, nil
}

// DataString joins the filesystem data, adding extra options (such as an SELinux context).
func (o *Options) DataString(extra ...string) string {
	return strings.Join(append(append([]string(nil), o.Data...), extra...), ",")
}

// Known lists every option word this package interprets (not filesystem data).
func Known() []string {
	var out []string
	for k := range flagOpts {
		out = append(out, k)
	}
	for k := range propagationOpts {
		out = append(out, k)
	}
	for k := range attrOpts {
		out = append(out, k)
	}
	for k := range atimeOpts {
		out = append(out, k)
	}
	out = append(out, "idmap", "ridmap", "tmpcopyup")
	sort.Strings(out)
	return out
}
