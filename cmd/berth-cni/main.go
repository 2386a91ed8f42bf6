// Command berth-cni holds every berth CNI plugin in one binary. The plugin is chosen by the name
// the binary is run as (bin/cni/bridge, bin/cni/host-local... are links to it), so that a
// configuration written for the reference plugins works with CNI_PATH pointed at bin/cni.
// "berth-cni PLUGIN" runs a plugin by name too.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/cni/bandwidth"
	"github.com/berth-dev/berth/internal/cni/bridge"
	"github.com/berth-dev/berth/internal/cni/firewall"
	"github.com/berth-dev/berth/internal/cni/hostlocal"
	"github.com/berth-dev/berth/internal/cni/loopback"
	"github.com/berth-dev/berth/internal/cni/portmap"
	"github.com/berth-dev/berth/internal/cni/tuning"
)

func table() cni.Table {
	return cni.Table{
		"bridge":     bridge.Funcs(),
		"host-local": hostlocal.Funcs(),
		"loopback":   loopback.Funcs(),
		"portmap":    portmap.Funcs(),
		"firewall":   firewall.Funcs(),
		"tuning":     tuning.Funcs(),
		"bandwidth":  bandwidth.Funcs(),
	}
}

func main() {
	if os.Getenv(cni.LingerEnv) != "" {
		// holds descriptors a plugin handed over, and closes them (see cni.Linger)
		os.Exit(0)
	}
	if os.Getenv(bridge.ReapNetnsEnv) != "" {
		// the detached helper of a bridge DEL (see bridge.Reap)
		if err := bridge.Reap(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	t := table()
	name := filepath.Base(os.Args[0])
	f, ok := t[name]
	if !ok && len(os.Args) > 1 {
		name = os.Args[1]
		f, ok = t[name]
	}
	if !ok {
		var names []string
		for n := range t {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "berth-cni: run as one of %v (a link named for the plugin), or berth-cni PLUGIN\n", names)
		os.Exit(2)
	}
	// This main serves the helper modes above, so plugins may start detached copies of it.
	ctx := cni.WithDetachedHelpers(cni.WithTable(context.Background(), t))
	os.Exit(cni.Main(ctx, name, f, os.Stdout))
}
