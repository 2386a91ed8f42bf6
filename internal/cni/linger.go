package cni

import (
	"context"
	"errors"
	"os"
	"syscall"
)

type helpersKey struct{}

// WithDetachedHelpers records that this process is berth-cni, whose main serves the helper modes
// (LingerEnv, bridge.ReapNetnsEnv) before anything else. Only then may a plugin start a copy of
// its own executable as a detached helper: any other executable (a test binary, a program
// embedding a plugin) would run its own main again instead, so without the mark the slow work is
// done inline.
func WithDetachedHelpers(ctx context.Context) context.Context {
	return context.WithValue(ctx, helpersKey{}, true)
}

// DetachedHelpers reports whether WithDetachedHelpers marked ctx.
func DetachedHelpers(ctx context.Context) bool {
	v, _ := ctx.Value(helpersKey{}).(bool)
	return v
}

// LingerEnv marks berth-cni started as the lingering holder of descriptors (see Linger).
const LingerEnv = "BERTH_CNI_LINGER"

// Linger hands files to a detached copy of this binary that closes them and exits, so that the
// cost of their last close is not paid before this process exits (and its runtime, waiting for the
// exit, may go on). It is for netlink sockets whose release waits in the kernel: releasing a
// netfilter socket flushes nf_tables' deferred destruction of the last transaction's deleted
// elements, an RCU grace period (about 7 ms here, more under load). Errors are not fatal: the
// caller then closes the files itself.
func Linger(ctx context.Context, files ...*os.File) error {
	if !DetachedHelpers(ctx) {
		return errors.New("no detached helpers in this executable")
	}
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
