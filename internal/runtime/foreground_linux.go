package runtime

import (
	"context"
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/console"
)

// Run creates and starts a container. Unless detach is set, it then stays attached: it relays
// signals (and the terminal, when the runtime holds it), waits for the init to exit, deletes the
// container and returns the init's exit status.
func (r *Runtime) Run(ctx context.Context, o CreateOptions, detach bool) (int, error) {
	o.attach = !detach
	c, err := r.Create(ctx, o)
	if err != nil {
		return -1, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Delete(ctx, true)
		return -1, err
	}
	if detach {
		return 0, nil
	}
	proc := &Process{Pid: c.rec.Pid, start: c.rec.PidStart, master: c.master}
	code, err := proc.attach(c.signalInit)
	if derr := c.Delete(ctx, true); err == nil {
		err = derr
	}
	return code, err
}

// ExecAttached runs a process in the container and stays attached as Run does, returning its exit
// status.
func (c *Container) ExecAttached(ctx context.Context, o ExecOptions) (int, error) {
	o.attach = true
	proc, err := c.Exec(ctx, o)
	if err != nil {
		return -1, err
	}
	return proc.attach(func(sig unix.Signal) error { return unix.Kill(proc.Pid, sig) })
}

// attach relays signals and the terminal to the process until it exits.
func (p *Process) attach(send func(unix.Signal) error) (int, error) {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
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
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := p.Wait()
		done <- result{code, err}
	}()
	for {
		select {
		case s := <-sigs:
			sig, ok := s.(unix.Signal)
			if !ok {
				continue
			}
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				// SIGURG is the Go runtime's own preemption signal; SIGCHLD is for us.
			case unix.SIGWINCH:
				if p.master != nil {
					_ = console.CopySize(os.Stdin, p.master)
				}
			default:
				_ = send(sig)
			}
		case r := <-done:
			if outDone != nil {
				// Output still in the terminal's buffer is read until the last slave closes.
				select {
				case <-outDone:
				case <-time.After(time.Second):
				}
			}
			return r.code, r.err
		}
	}
}
