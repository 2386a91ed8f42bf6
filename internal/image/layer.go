package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WriteLayer writes the tree under dir as an uncompressed layer tar to w: sorted names, numeric
// owners, hard links kept as links, extended attributes in the security and user namespaces kept
// (file capabilities live there), sockets skipped. Times are kept unless epoch is set, in which
// case every entry gets it (reproducible layers).
func WriteLayer(ctx context.Context, dir string, w io.Writer, epoch *time.Time) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := walkSorted(dir, "", func(rel string, fi fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		full := filepath.Join(dir, rel)
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(full)
			if err != nil {
				return err
			}
			target = t
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if epoch != nil {
			hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = *epoch, time.Time{}, time.Time{}
		} else {
			hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil && fi.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[key] = rel
			}
		}
		if err := xattrsOf(full, hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("layer from %s: %w", dir, err)
	}
	return tw.Close()
}

func walkSorted(root, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	ents, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		r := e.Name()
		if rel != "" {
			r = rel + "/" + e.Name()
		}
		fi, err := os.Lstat(filepath.Join(root, r))
		if err != nil {
			return err
		}
		if err := fn(r, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkSorted(root, r, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func xattrsOf(path string, hdr *tar.Header) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(path, buf)
	if err != nil || n == 0 {
		return nil // no xattrs, or a filesystem without them
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if !strings.HasPrefix(name, "security.") && !strings.HasPrefix(name, "user.") {
			continue
		}
		if name == "security.selinux" {
			continue // the host's label, not the image's
		}
		vb := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(path, name, vb)
		if err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(vb[:vn])
	}
	return nil
}
