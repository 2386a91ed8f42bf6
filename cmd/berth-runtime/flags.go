package main

import (
	"flag"
	"io"
	"strings"
)

// flags wraps flag.FlagSet with runc's habits: several names per option (-d, --detach), options
// that repeat (--env A --env B), and errors that name the command.
type flags struct {
	*flag.FlagSet
}

func newFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{fs}
}

func (f *flags) str(p *string, def, usage string, names ...string) {
	for _, n := range names {
		f.StringVar(p, n, def, usage)
	}
}

func (f *flags) boolean(p *bool, usage string, names ...string) {
	for _, n := range names {
		f.BoolVar(p, n, false, usage)
	}
}

func (f *flags) integer(p *int, def int, usage string, names ...string) {
	for _, n := range names {
		f.IntVar(p, n, def, usage)
	}
}

func (f *flags) list(p *[]string, usage string, names ...string) {
	for _, n := range names {
		f.Var((*stringList)(p), n, usage)
	}
}

// parse parses options and returns the positional arguments; option errors are usage errors.
func (f *flags) parse(args []string) ([]string, error) {
	if err := f.Parse(args); err != nil {
		return nil, usageError{err}
	}
	return f.Args(), nil
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// oneID checks that exactly a container id was given.
func oneID(args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usagef("a container id is required")
	case 1:
		return args[0], nil
	}
	return "", usagef("unexpected arguments after the container id: %q", args[1:])
}
