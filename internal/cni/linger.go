package cni

import (
	"os"
	"syscall"
)

// LingerEnv marks berth-cni started as the lingering holder of descriptors (see Linger).
const LingerEnv = "BERTH_CNI_LINGER"

// Linger hands files to a detached copy of this binary that closes them and exits, so that the
// cost of their last close is not paid before this process exits (and its runtime, waiting for the
// exit, may go on). It is for netlink sockets whose release waits in the kernel: releasing a
// netfilter socket flushes nf_tables' deferred destruction of the last transaction's deleted
// elements, an RCU grace period (about 7 ms here, more under load). Errors are not fatal: the
// caller then closes the files itself.
func Linger(files ...*os.File) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	p, err := os.StartProcess(self, []string{"berth-cni-linger"}, &os.ProcAttr{
		Env:   []string{LingerEnv + "=1"},
		Files: append([]*os.File{devnull, devnull, devnull}, files...),
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return err
	}
	return p.Release()
}
