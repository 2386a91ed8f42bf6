package console

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenPty allocates a pseudo-terminal from ptmx (normally /dev/ptmx or /dev/pts/ptmx in the current
// root) and returns its master and its slave, both close-on-exec.
func OpenPty(ptmx string) (master, slave *os.File, err error) {
	mfd, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", ptmx, err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, so no path in a container-controlled /dev/pts
	// is trusted.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	sfd := int(r)
	if errno != 0 {
		err = errno
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open pty peer: %w", err)
	}
	return os.NewFile(uintptr(mfd), ptmx), os.NewFile(uintptr(sfd), fmt.Sprintf("/dev/pts/%d", n)), nil
}

// SetSize sets a terminal's window size.
func SetSize(f *os.File, height, width uint) error {
	ws := &unix.Winsize{Row: uint16(height), Col: uint16(width)}
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("set terminal size: %w", err)
	}
	return nil
}

// CopySize copies the window size of one terminal to another.
func CopySize(from, to *os.File) error {
	ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return err
	}
	return unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
}

// SendFile sends f over a unix socket as runc does: the name as data, the descriptor as SCM_RIGHTS.
func SendFile(sock *os.File, f *os.File) error {
	name := []byte(f.Name())
	if len(name) == 0 {
		name = []byte("pty")
	}
	rights := unix.UnixRights(int(f.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), name, rights, nil, 0); err != nil {
		return fmt.Errorf("send %s over the console socket: %w", f.Name(), err)
	}
	return nil
}

// RecvFile receives one descriptor sent by SendFile.
func RecvFile(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive from the console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: expected one control message (got %d): %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket: expected one descriptor: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// State is a terminal's saved mode.
type State struct {
	fd      int
	termios unix.Termios
}

// MakeRaw puts the terminal f into raw mode and returns what Restore needs; it fails on a non-terminal.
func MakeRaw(f *os.File) (*State, error) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	st := &State{fd: fd, termios: *t}
	raw := *t
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return st, nil
}

// Restore puts the terminal back as it was.
func (s *State) Restore() error { return unix.IoctlSetTermios(s.fd, unix.TCSETS, &s.termios) }

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
