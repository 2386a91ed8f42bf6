package runtime

import (
	"context"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/sigrelay"
)

// forwarded are the signals an attached runtime relays to its container.
var forwarded = []unix.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH,
	unix.SIGALRM, unix.SIGABRT, unix.SIGCONT, unix.SIGPWR,
}

// startRelay catches the forwarded signals (package sigrelay says why not os/signal). A runtime
// that cannot catch them still runs the container, unrelayed.
func (r *Runtime) startRelay() *sigrelay.Relay {
	rl, err := sigrelay.Start(forwarded...)
	if err != nil {
		r.log().Warn("signals will not be relayed to the container", "error", err)
		return nil
	}
	return rl
}

// Run creates and starts a container. Unless detach is set, it then stays attached: it relays
// signals (and the terminal, when the runtime holds it), waits for the init to exit, deletes the
// container and returns the init's exit status.
func (r *Runtime) Run(ctx context.Context, o CreateOptions, detach bool) (int, error) {
	o.attach, o.run = !detach, true
	var rl *sigrelay.Relay
	if !detach {
		if rl = r.startRelay(); rl != nil {
			defer rl.Stop()
		}
	}
	c, err := r.Create(ctx, o)
	if err != nil {
		return -1, err
	}
	trace("created")
	if err := c.Start(ctx); err != nil {
		_ = c.Delete(ctx, true)
		return -1, err
	}
	trace("started")
	if detach {
		return 0, nil
	}
	proc := &Process{Pid: c.rec.Pid, start: c.rec.PidStart, master: c.master}
	code, err := proc.attach(rl, c.signalInit)
	trace("exited")
	if derr := c.Delete(ctx, true); err == nil {
		err = derr
	}
	trace("deleted")
	return code, err
}

// ExecAttached runs a process in the container and stays attached as Run does, returning its exit
// status.
func (c *Container) ExecAttached(ctx context.Context, o ExecOptions) (int, error) {
	o.attach = true
	rl := c.rt.startRelay()
	if rl != nil {
		defer rl.Stop()
	}
	proc, err := c.Exec(ctx, o)
	if err != nil {
		return -1, err
	}
	return proc.attach(rl, func(sig unix.Signal) error { return unix.Kill(proc.Pid, sig) })
}

// attach relays signals and the terminal to the process until it exits. The wait happens on the
// calling goroutine: the exit wakes it directly.
func (p *Process) attach(rl *sigrelay.Relay, send func(unix.Signal) error) (int, error) {
	stop := make(chan struct{})
	defer close(stop)
	var signals <-chan unix.Signal // nil, never ready, without a relay
	if rl != nil {
		signals = rl.C
	}
	go func() {
		for {
			select {
			case <-stop:
				return
			case sig, ok := <-signals:
				if !ok {
					return
				}
				if sig == unix.SIGWINCH {
					if p.master != nil {
						_ = console.CopySize(os.Stdin, p.master)
					}
					continue
				}
				_ = send(sig)
			}
		}
	}()
	var outDone chan struct{}
	if p.master != nil {
		if console.IsTerminal(os.Stdin) {
			if st, err := console.MakeRaw(os.Stdin); err == nil {
				defer st.Restore()
			}
			_ = console.CopySize(os.Stdin, p.master)
		}
		go func() { _, _ = io.Copy(p.master, os.Stdin) }()
		outDone = make(chan struct{})
		go func() {
			_, _ = io.Copy(os.Stdout, p.master)
			close(outDone)
		}()
	}
	trace("attach-wait")
	code, err := p.Wait()
	trace("attach-reaped")
	if outDone != nil {
		// Output still in the terminal's buffer is read until the last slave closes.
		select {
		case <-outDone:
		case <-time.After(time.Second):
		}
	}
	return code, err
}
