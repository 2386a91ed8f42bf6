package linux

import (
	"os"

	"golang.org/x/sys/unix"
)

func open(path string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, mode)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// WriteFile writes data to an existing file in a single write(2), as cgroupfs and procfs want (a
// value split over two writes is two values).
func WriteFile(path string, data []byte) error {
	w, err := OpenWriter(path)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Write(data)
}

// Writer writes values to an existing file, each in a single write(2), through one open: cgroupfs
// takes some control files a value at a time (devices.allow), and every open walks its path.
type Writer struct {
	path string
	fd   int
}

// OpenWriter opens path for writing, as WriteFile does.
func OpenWriter(path string) (*Writer, error) {
	fd, err := open(path, unix.O_WRONLY|unix.O_TRUNC, 0)
	if err != nil {
		return nil, err
	}
	return &Writer{path: path, fd: fd}, nil
}

// Write writes data in a single write(2).
func (w *Writer) Write(data []byte) error {
	for {
		n, err := unix.Write(w.fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: w.path, Err: err}
		}
		if n != len(data) {
			return &os.PathError{Op: "write", Path: w.path, Err: unix.EIO}
		}
		return nil
	}
}

// Close closes the file.
func (w *Writer) Close() error { return unix.Close(w.fd) }

// ReadFile reads a whole file, such as a procfs or cgroupfs one whose size stat cannot tell.
func ReadFile(path string) ([]byte, error) {
	fd, err := open(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// CreateFile writes data to path, which it creates or truncates, with mode.
func CreateFile(path string, data []byte, mode uint32) error {
	fd, err := open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, mode)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: path, Err: err}
		}
		data = data[n:]
	}
	return nil
}
