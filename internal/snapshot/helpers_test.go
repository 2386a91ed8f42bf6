package snapshot

import (
	"io"
	"syscall"
)

type ioReadCloser = io.ReadCloser

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

type syscallStat = syscall.Stat_t
