package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berth-dev/berth/internal/capabilities"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/seccomp"
	"github.com/berth-dev/berth/internal/specdefault"
)

func cmdSpec(ctx context.Context, g *globals, args []string) error {
	var bundle string
	var rootless bool
	f := newFlags("spec")
	f.str(&bundle, ".", "directory to write config.json in", "bundle", "b")
	f.boolean(&rootless, "a configuration for an unprivileged user", "rootless")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected arguments %q", rest)
	}
	s := specdefault.Spec()
	if rootless {
		specdefault.Rootless(s, os.Getuid(), os.Getgid())
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	path := filepath.Join(bundle, "config.json")
	// O_EXCL: an existing configuration is somebody's work.
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		if os.IsExist(err) {
			return fmt.Errorf("%s exists: remove it first", path)
		}
		return err
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func cmdFeatures(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	yes, no := true, false
	sel, aa := runtime.LSMEnabled()
	ft := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mount.Known(),
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: capabilities.Supported(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no, Rdma: &yes},
			Seccomp: &features.Seccomp{
				Enabled: &yes, Actions: seccomp.KnownActions(), Operators: seccomp.KnownOperators(),
				Archs: seccomp.KnownArchs(), KnownFlags: seccomp.KnownFlags(), SupportedFlags: seccomp.SupportedFlags(),
			},
			Apparmor: &features.Apparmor{Enabled: &aa},
			Selinux:  &features.Selinux{Enabled: &sel},
			IntelRdt: &features.IntelRdt{Enabled: &no},
			MemoryPolicy: &features.MemoryPolicy{
				Modes: []string{"MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"},
				Flags: []string{"MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"},
			},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &yes}},
		},
	}
	return printJSON(ft)
}
