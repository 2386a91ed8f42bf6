package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// SupportedVersions are the spec versions every berth plugin speaks: everything libcni still
// sends. CHECK needs 0.4.0 or later, GC and STATUS 1.1.0 (pkg/skel enforces both).
var SupportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Funcs are one plugin's operations. They return results and wrapped errors; they never print.
// Add's result is converted to the request's cniVersion by Main.
type Funcs struct {
	Add    func(ctx context.Context, args *skel.CmdArgs) (types.Result, error)
	Del    func(ctx context.Context, args *skel.CmdArgs) error
	Check  func(ctx context.Context, args *skel.CmdArgs) error
	GC     func(ctx context.Context, args *skel.CmdArgs) error
	Status func(ctx context.Context, args *skel.CmdArgs) error
}

// Table is the plugins of one binary by name; delegation to a plugin of the same binary runs in
// process (see Delegate).
type Table map[string]Funcs

type tableKey struct{}

// WithTable stores the binary's plugin table in ctx for in-process delegation.
func WithTable(ctx context.Context, t Table) context.Context {
	return context.WithValue(ctx, tableKey{}, t)
}

func tableFrom(ctx context.Context) Table {
	t, _ := ctx.Value(tableKey{}).(Table)
	return t
}

// Main runs one plugin by the CNI protocol: the environment and stdin in, a result or an error JSON
// on stdout. It returns the process exit code.
func Main(ctx context.Context, name string, f Funcs, stdout io.Writer) int {
	start := time.Now()
	ctx = withLog(ctx, name)
	defer func() {
		Logger(ctx).Debug("done", "command", os.Getenv("CNI_COMMAND"), "container", os.Getenv("CNI_CONTAINERID"), "elapsed", time.Since(start))
	}()
	var printErr error
	wrap := func(fn func(context.Context, *skel.CmdArgs) error) func(*skel.CmdArgs) error {
		if fn == nil {
			return nil
		}
		return func(a *skel.CmdArgs) error {
			if err := fn(ctx, a); err != nil {
				Logger(ctx).Error("failed", "container", a.ContainerID, "ifname", a.IfName, "err", err)
				if te := ToTypesError(err); te != nil {
					return te
				}
			}
			return nil
		}
	}
	funcs := skel.CNIFuncs{
		Del:    wrap(f.Del),
		Check:  wrap(f.Check),
		GC:     wrap(f.GC),
		Status: wrap(f.Status),
	}
	if f.Add != nil {
		funcs.Add = wrap(func(ctx context.Context, a *skel.CmdArgs) error {
			res, err := f.Add(ctx, a)
			if err != nil {
				return err
			}
			printErr = PrintResult(res, a.StdinData, stdout)
			return printErr
		})
	}
	// skel refuses CHECK, GC and STATUS for old versions itself, but calls a nil func; give it
	// no-ops for operations a plugin has nothing to do for.
	noop := func(*skel.CmdArgs) error { return nil }
	if funcs.Del == nil {
		funcs.Del = noop
	}
	if funcs.Check == nil {
		funcs.Check = noop
	}
	if funcs.GC == nil {
		funcs.GC = noop
	}
	if funcs.Status == nil {
		funcs.Status = noop
	}
	if e := skel.PluginMainFuncsWithError(funcs, SupportedVersions, "berth-cni "+name); e != nil {
		if b, err := json.Marshal(e); err == nil {
			stdout.Write(append(b, '\n'))
		}
		return 1
	}
	return 0
}

// PrintResult writes res converted to the cniVersion of the request in stdin.
func PrintResult(res types.Result, stdin []byte, w io.Writer) error {
	var v struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(stdin, &v); err != nil {
		return fmt.Errorf("read cniVersion: %w: %w", ErrDecode, err)
	}
	if v.CNIVersion == "" {
		v.CNIVersion = "0.1.0"
	}
	out, err := res.GetAsVersion(v.CNIVersion)
	if err != nil {
		return fmt.Errorf("convert result to %s: %w: %w", v.CNIVersion, ErrInvalidConfig, err)
	}
	return out.PrintTo(w)
}

// Conf is the part of every plugin's configuration that berth reads the same way in each plugin.
// It is embedded in the plugins' own configuration structs.
type Conf struct {
	types.PluginConf
	// LogFile and LogLevel override BERTH_CNI_LOG and BERTH_CNI_LOG_LEVEL for this plugin.
	LogFile  string `json:"logFile,omitempty"`
	LogLevel string `json:"logLevel,omitempty"`
}

// MarshalJSON keeps the embedded PluginConf's marshaller from hiding the rest of a plugin's struct.
// Plugins never marshal their configuration; this only exists so that a mistaken Marshal fails
// loudly instead of dropping fields.
func (c *Conf) MarshalJSON() ([]byte, error) {
	return nil, fmt.Errorf("cni.Conf is not meant to be marshalled")
}

// Decode unmarshals a plugin configuration from stdin into conf (a struct embedding Conf), parses
// its prevResult, and applies its log settings to the context's logger.
func Decode(ctx context.Context, stdin []byte, conf interface{ base() *Conf }) error {
	if err := json.Unmarshal(stdin, conf); err != nil {
		return fmt.Errorf("network configuration: %w: %w", ErrDecode, err)
	}
	c := conf.base()
	configureLog(ctx, c.LogFile, c.LogLevel)
	if c.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.PluginConf); err != nil {
			return fmt.Errorf("prevResult: %w: %w", ErrDecode, err)
		}
	}
	return nil
}

func (c *Conf) base() *Conf { return c }

// PrevResult returns the configuration's prevResult as a 1.x result, or nil if there is none.
func (c *Conf) PrevResult100() (*types100.Result, error) {
	if c.PrevResult == nil {
		return nil, nil
	}
	r, err := types100.NewResultFromResult(c.PrevResult)
	if err != nil {
		return nil, fmt.Errorf("prevResult: %w: %w", ErrDecode, err)
	}
	return r, nil
}

// RequirePrevResult is PrevResult100 for a plugin that only makes sense chained after an interface
// plugin: no prevResult is an invalid configuration naming the plugin.
func (c *Conf) RequirePrevResult(plugin string) (*types100.Result, error) {
	r, err := c.PrevResult100()
	if err == nil && r == nil {
		err = fmt.Errorf("%s must be chained after an interface plugin (no prevResult): %w", plugin, ErrInvalidConfig)
	}
	return r, err
}

// ParseArgs splits CNI_ARGS ("K=V;K2=V2") into a map. Keys the plugin does not know are ignored,
// as the spec's IgnoreUnknown convention allows, because runtimes add their own (K8S_POD_NAME...).
func ParseArgs(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("CNI_ARGS: pair %q has no '=': %w", kv, ErrEnv)
		}
		m[k] = v
	}
	return m, nil
}

// Logger is the logger that travels in ctx.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(logKey{}).(*logState); ok {
		return l.logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
