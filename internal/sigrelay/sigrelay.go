// Package sigrelay catches signals for a runtime that relays them to a container.
//
// Package os/signal would do, but it keeps a helper thread whose signal mask follows the enabled
// signals, and it updates that mask with a round trip per signal, enabling and disabling: with the
// eleven signals an attached runtime relays, that is some forty thread wake-ups per container, each
// a VM exit where idle CPUs halt. Here a handler in C writes each signal's number to a pipe, and
// installing it is one sigaction per signal.
//
// Only one Relay may be active at a time, and the process must not use os/signal for the same
// signals meanwhile.
package sigrelay

// #cgo CFLAGS: -Wall -Wextra -O2
// #include "sigrelay.h"
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Relay delivers the caught signals on C.
type Relay struct {
	C    <-chan unix.Signal
	sigs []C.int
	done chan struct{}
}

var (
	active sync.Mutex
	// The pipe lives as long as the process: a handler already running on another thread when
	// Stop restores the old ones may still write, and must never write into a reused descriptor.
	pipeOnce sync.Once
	pipeR    *os.File // pipeRFD, which is non-blocking: reads wait in the runtime's poller
	pipeRFD  int
	pipeW    int
	pipeErr  error
)

// Start installs the handler for sigs. Signals arriving before Stop are delivered on C, in order;
// when C is not read, signals beyond its buffer are dropped, as package os/signal does.
func Start(sigs ...unix.Signal) (*Relay, error) {
	pipeOnce.Do(func() {
		var p [2]int
		if pipeErr = unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); pipeErr != nil {
			pipeErr = fmt.Errorf("sigrelay: pipe: %w", pipeErr)
			return
		}
		pipeR, pipeRFD, pipeW = os.NewFile(uintptr(p[0]), "sigrelay"), p[0], p[1]
	})
	if pipeErr != nil {
		return nil, pipeErr
	}
	if !active.TryLock() {
		return nil, errors.New("sigrelay: another relay is active")
	}
	drain()
	r := &Relay{done: make(chan struct{})}
	for _, s := range sigs {
		if s <= 0 || s >= 65 {
			active.Unlock()
			return nil, fmt.Errorf("sigrelay: cannot catch signal %d", int(s))
		}
		r.sigs = append(r.sigs, C.int(s))
	}
	if len(r.sigs) > 0 {
		if bad := C.berth_sigrelay_install(C.int(pipeW), &r.sigs[0], C.int(len(r.sigs))); bad != 0 {
			C.berth_sigrelay_restore(&r.sigs[0], C.int(len(r.sigs)))
			active.Unlock()
			return nil, fmt.Errorf("sigrelay: cannot catch signal %d", int(bad))
		}
	}
	ch := make(chan unix.Signal, 64)
	r.C = ch
	go r.pump(ch)
	return r, nil
}

// drain discards what a previous relay's late handlers left in the pipe.
func drain() {
	var buf [64]byte
	for {
		if n, err := unix.Read(pipeRFD, buf[:]); n <= 0 || err != nil {
			return
		}
	}
}

// stopByte is written by Stop to end the pump: no signal has number 0.
const stopByte = 0

// pump turns the pipe's bytes into channel values.
func (r *Relay) pump(ch chan<- unix.Signal) {
	defer close(r.done)
	defer close(ch)
	buf := make([]byte, 64)
	for {
		n, err := pipeR.Read(buf)
		for _, b := range buf[:n] {
			if b == stopByte {
				return
			}
			select {
			case ch <- unix.Signal(b):
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// Stop restores the handlers that were in place before Start and closes C.
func (r *Relay) Stop() {
	if len(r.sigs) > 0 {
		C.berth_sigrelay_restore(&r.sigs[0], C.int(len(r.sigs)))
	}
	_, _ = unix.Write(pipeW, []byte{stopByte})
	<-r.done
	active.Unlock()
}
