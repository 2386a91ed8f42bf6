// Command berth-runtime is berth's OCI runtime, with runc's command line.
//
// The Go runtime's cgroup-aware GOMAXPROCS reads (and keeps open) the host's cgroup files at every
// start: a cost on the hot path, and host descriptors in a process that becomes a container's init.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/runtime"
)

const version = "0.1.0"

// command is one subcommand: its usage line and what it runs.
type command struct {
	usage string
	run   func(ctx context.Context, g *globals, args []string) error
}

var commands = map[string]command{
	"create":     {"create [options] <container-id>", cmdCreate},
	"run":        {"run [options] <container-id>", cmdRun},
	"start":      {"start <container-id>", cmdStart},
	"state":      {"state <container-id>", cmdState},
	"kill":       {"kill [--all] <container-id> [signal]", cmdKill},
	"delete":     {"delete [--force] <container-id>...", cmdDelete},
	"exec":       {"exec [options] <container-id> [command [args...]]", cmdExec},
	"list":       {"list [--format table|json] [--quiet]", cmdList},
	"ps":         {"ps [--format table|json] <container-id> [ps options]", cmdPs},
	"pause":      {"pause <container-id>", cmdPause},
	"resume":     {"resume <container-id>", cmdResume},
	"events":     {"events [--stats] [--interval 5s] <container-id>", cmdEvents},
	"update":     {"update [options] <container-id>", cmdUpdate},
	"spec":       {"spec [--bundle dir] [--rootless]", cmdSpec},
	"features":   {"features", cmdFeatures},
	"checkpoint": {"checkpoint <container-id>", cmdUnsupported("checkpoint")},
	"restore":    {"restore <container-id>", cmdUnsupported("restore")},
}

// globals are the options before the subcommand.
type globals struct {
	rt        *runtime.Runtime
	logFormat string
}

// init locks the main goroutine to the main thread, which is the only way to have main run there:
// a container process moves its exec'ing thread alone into the container's cgroup v1 hierarchies
// (see internal/runtime), and /proc/<pid>/cgroup, which clients read, is the main thread's.
func init() { goruntime.LockOSThread() }

func main() {
	if runtime.IsContainerProcess() {
		runtime.ContainerMain()
	}
	goruntime.UnlockOSThread()
	if os.Getenv("BERTH_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "TRACE %d main %d\n", os.Getpid(), time.Now().UnixMicro())
	}
	code := realMain(os.Args[1:])
	// The container process the constructor started ahead for create, run and exec, if an error
	// came before it was needed.
	nsexec.DiscardPrespawned()
	os.Exit(code)
}

func realMain(args []string) int {
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	root := fs.String("root", defaultRoot(), "state directory")
	logPath := fs.String("log", "", "log file (default stderr)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log debug messages")
	systemd := fs.Bool("systemd-cgroup", false, "use the systemd cgroup driver")
	rootless := fs.String("rootless", "auto", "rootless mode: true, false or auto")
	_ = fs.String("criu", "criu", "ignored: checkpoint/restore is not supported")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	help := fs.Bool("help", false, "print usage")
	fs.BoolVar(help, "h", false, "print usage")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 2
	}
	if *showVersion {
		fmt.Printf("berth-runtime version %s\nspec: %s\ngo: %s\n", version, specs.Version, goruntime.Version())
		return 0
	}
	rest := fs.Args()
	if *help || len(rest) == 0 {
		usage(os.Stdout)
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	name, cmdArgs := rest[0], rest[1:]
	if name == "help" {
		usage(os.Stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "berth-runtime: unknown command %q (try --help)\n", name)
		return 2
	}
	logger, closeLog, err := newLogger(*logPath, *logFormat, *debug)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 1
	}
	defer closeLog()
	slog.SetDefault(logger)
	switch *rootless {
	case "true", "false", "auto":
	default:
		logger.Error(fmt.Sprintf("--rootless %q: want true, false or auto", *rootless))
		return 2
	}
	if *systemd {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return fail(logger, errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the default cgroupfs driver"))
		}
	}
	isRootless := *rootless == "true" || (*rootless == "auto" && os.Geteuid() != 0)
	g := &globals{rt: &runtime.Runtime{Root: *root, SystemdCgroup: *systemd, Rootless: isRootless, Logger: logger}, logFormat: *logFormat}
	if err := cmd.run(context.Background(), g, cmdArgs); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "berth-runtime %s: %v\nusage: berth-runtime %s\n", name, ue.err, cmd.usage)
			logger.Error(ue.err.Error())
			return 2
		}
		return fail(logger, err)
	}
	return 0
}

// fail reports an error where both kinds of client look: the log (containerd's shim reads the last
// "error" line of --log) and stderr (podman and people).
func fail(logger *slog.Logger, err error) int {
	logger.Error(err.Error())
	if !logsToStderr {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
	}
	return 1
}

func defaultRoot() string {
	if uid := os.Geteuid(); uid != 0 {
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			return d + "/berth-runtime"
		}
		return fmt.Sprintf("/tmp/berth-runtime-%d", uid)
	}
	return "/run/berth-runtime"
}

var logsToStderr bool

// newLogger logs like runc (logrus): "level" in lower case, RFC 3339 times, "msg".
func newLogger(path, format string, debug bool) (*slog.Logger, func(), error) {
	var w io.Writer = os.Stderr
	closer := func() {}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log %s: %w", path, err)
		}
		w, closer = f, func() { f.Close() }
	} else {
		logsToStderr = true
	}
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch {
		case len(groups) > 0:
		case a.Key == slog.LevelKey:
			lv := strings.ToLower(a.Value.String())
			if lv == "warn" {
				lv = "warning"
			}
			return slog.String(slog.LevelKey, lv)
		case a.Key == slog.TimeKey:
			return slog.String(slog.TimeKey, a.Value.Time().Format(time.RFC3339Nano))
		}
		return a
	}}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), closer, nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), closer, nil
	}
	closer()
	return nil, nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "berth-runtime %s: an OCI runtime (runtime-spec %s), runc-compatible\n\n", version, specs.Version)
	fmt.Fprintln(w, "global options: --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --rootless true|false|auto, --version")
	fmt.Fprintln(w, "\ncommands:")
	names := []string{"create", "start", "run", "state", "kill", "delete", "exec", "list", "ps", "pause", "resume", "events", "update", "spec", "features"}
	for _, n := range names {
		fmt.Fprintf(w, "  %s\n", commands[n].usage)
	}
}

// exitCode is returned by commands whose exit status is the container process's.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func cmdUnsupported(name string) func(context.Context, *globals, []string) error {
	return func(context.Context, *globals, []string) error {
		return fmt.Errorf("%s: not supported by berth-runtime (no CRIU integration)", name)
	}
}
