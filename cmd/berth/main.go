// Command berth is the platform's long-running roles and user CLI in one binary: `berth registry
// serve`, `berth registry gc`, and later the daemon and the image commands.
//
// main is a dispatch table and flag parsing only; each command lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// commands is the dispatch table: one line per top-level command, each defined in its own file
// (registry.go; an `image` command goes in image.go and gets its line here).
func commands() []*command {
	return []*command{
		imageCommand(),
		registryCommand(),
	}
}

// command is a node of the command tree: either it runs, or it dispatches to subcommands.
type command struct {
	name    string
	summary string
	usage   string // arguments after the flags, for the usage line
	// flags declares the command's flags on fs and returns the function that runs it.
	flags func(fs *flag.FlagSet) func(ctx context.Context, args []string) error
	subs  []*command
}

// usageError is a mistake on the command line: the usage is printed and the exit status is 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	// SIGINT and SIGTERM cancel the context: servers shut down gracefully, other commands stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args and returns the exit status: 0, 1 for a failure, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &command{name: "berth", summary: "a container platform", subs: commands()}
	err := root.dispatch(ctx, nil, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "berth: %s\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
}

func (c *command) dispatch(ctx context.Context, path []string, args []string, stdout, stderr io.Writer) error {
	path = append(path, c.name)
	full := strings.Join(path, " ")
	if c.subs != nil {
		if len(args) == 0 {
			c.help(stderr, full)
			return usagef("%s: missing command", full)
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			c.help(stdout, full)
			return flag.ErrHelp
		}
		for _, s := range c.subs {
			if s.name == args[0] {
				return s.dispatch(ctx, path, args[1:], stdout, stderr)
			}
		}
		c.help(stderr, full)
		return usagef("%s: unknown command %q", full, args[0])
	}
	fs := flag.NewFlagSet(full, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runFn := c.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help(stdout, full)
			fmt.Fprintln(stdout, "\nFlags:")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return usagef("%s: %v (see --help)", full, err)
	}
	return runFn(context.WithValue(ctx, stdoutKey{}, stdout), fs.Args())
}

func (c *command) help(w io.Writer, full string) {
	if c.subs == nil {
		fmt.Fprintf(w, "Usage: %s [flags] %s\n\n%s\n", full, c.usage, c.summary)
		return
	}
	fmt.Fprintf(w, "Usage: %s COMMAND [flags]\n\n%s\n\nCommands:\n", full, c.summary)
	for _, s := range c.subs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags.\n", full)
}

type stdoutKey struct{}

// stdoutOf is where a command writes its results: run's stdout (tests run commands in-process).
func stdoutOf(ctx context.Context) io.Writer {
	if w, ok := ctx.Value(stdoutKey{}).(io.Writer); ok {
		return w
	}
	return os.Stdout
}
