package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/nsexec"
)

// runHooks runs hooks in order with the container state on their stdin, stopping at the first
// failure. It is used by both halves: which namespace a hook runs in is decided by who calls it.
func runHooks(kind string, hooks []specs.Hook, state []byte) error {
	for i, h := range hooks {
		if err := runHook(h, state); err != nil {
			return fmt.Errorf("hooks.%s[%d] %s: %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// runHooksWarn runs every hook even when some fail, as poststart and poststop hooks must, and returns
// the failures for the caller to log.
func runHooksWarn(kind string, hooks []specs.Hook, state []byte) []error {
	var errs []error
	for i, h := range hooks {
		if err := runHook(h, state); err != nil {
			errs = append(errs, fmt.Errorf("hooks.%s[%d] %s: %w", kind, i, h.Path, err))
		}
	}
	return errs
}

// maxHookOutput bounds how much of a failing hook's output goes into the error.
const maxHookOutput = 4096

func runHook(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = append([]string{}, h.Env...) // a hook gets exactly its env, not the runtime's
	cmd.Stdin = bytes.NewReader(state)
	cmd.Stdout = &limitedBuffer{buf: &out}
	cmd.Stderr = cmd.Stdout
	// A hook's own children may keep its output open; do not wait for them forever.
	cmd.WaitDelay = time.Second
	err := nsexec.WithHostTimerSlack(cmd.Start)
	if err == nil {
		err = cmd.Wait()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %d seconds", *h.Timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

type limitedBuffer struct{ buf *bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxHookOutput - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
