package nsexec

// extern int berth_late_netns_sock;
import "C"

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// EnterLateNetNS enters the new network namespace that the constructor had made after the fork,
// while this process started its Go runtime (nsexec.c, berth_late_netns_sock); it does nothing if
// there is none to wait for. The caller must be locked to the thread that execs the container's
// program: the namespace is entered by that thread, which is the one the program, the hooks this
// process starts and /proc/<pid>/ns/net see.
func EnterLateNetNS() error {
	sock := int(C.berth_late_netns_sock)
	if sock < 0 {
		return nil
	}
	C.berth_late_netns_sock = -1
	defer unix.Close(sock)
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receive the new network namespace: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if rights, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if n == 0 {
		return errors.New("the new network namespace was not made: its maker exited")
	}
	if msg := string(buf[:n]); msg != "ok" || len(fds) != 1 {
		return errors.New(msg)
	}
	if err := unix.Setns(fds[0], unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter the new network namespace: %w", err)
	}
	return nil
}
