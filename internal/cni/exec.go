package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// The spec's delegation by exec, written here rather than taken from pkg/invoke because invoke
// pulls OpenTelemetry into every plugin's start-up for a feature a plugin never uses.

// findInPath returns the first executable named plugin in the colon-separated dirs.
func findInPath(plugin, dirs string) (string, error) {
	if plugin == "" || strings.ContainsRune(plugin, '/') {
		return "", fmt.Errorf("plugin name %q: %w", plugin, ErrInvalidConfig)
	}
	for _, d := range filepath.SplitList(dirs) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, plugin)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("plugin %q not found in CNI_PATH %q: %w", plugin, dirs, ErrInvalidConfig)
}

// execPlugin runs plugin with CNI_COMMAND=op and the caller's other CNI_* parameters (from args,
// which skel read from this process's environment).
func execPlugin(ctx context.Context, op, plugin string, netconf []byte, args *skel.CmdArgs) (types.Result, error) {
	path, err := findInPath(plugin, args.Path)
	if err != nil {
		return nil, err
	}
	env := make([]string, 0, len(os.Environ())+6)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CNI_") {
			env = append(env, e)
		}
	}
	env = append(env, "CNI_COMMAND="+op, "CNI_CONTAINERID="+args.ContainerID, "CNI_NETNS="+args.Netns,
		"CNI_IFNAME="+args.IfName, "CNI_ARGS="+args.Args, "CNI_PATH="+args.Path)
	if args.NetnsOverride != "" {
		env = append(env, "CNI_NETNS_OVERRIDE="+args.NetnsOverride)
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(netconf)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	runErr := cmd.Run()
	out := stdout.Bytes()
	if runErr != nil {
		var te types.Error
		if len(bytes.TrimSpace(out)) > 0 && json.Unmarshal(out, &te) == nil && te.Msg != "" {
			return nil, &te
		}
		var ee *exec.ExitError
		if errors.As(runErr, &ee) {
			return nil, fmt.Errorf("%s %s exited with %d and no error result: %w", plugin, op, ee.ExitCode(), runErr)
		}
		return nil, fmt.Errorf("run %s %s: %w", plugin, op, runErr)
	}
	if op != "ADD" {
		return nil, nil
	}
	var v struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(netconf, &v); err != nil {
		return nil, fmt.Errorf("delegated config: %w: %w", ErrDecode, err)
	}
	res, err := version.NewResult(v.CNIVersion, out)
	if err != nil {
		return nil, fmt.Errorf("result of %s: %w: %w", plugin, ErrDecode, err)
	}
	return res, nil
}
