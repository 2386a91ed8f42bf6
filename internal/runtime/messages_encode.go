package runtime

import (
	"io"
	"slices"
	"strconv"

	"github.com/berth-dev/berth/internal/jsonappend"
	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/specjson"
)

// The sync socket's frames are written and read by hand, in the format encoding/json gives the
// types' tags (tests hold them together): both halves are fresh processes, and encoding/json's
// per-type set-up on first use costs more than the rest of what they do with a frame. Raw members
// (the config, states) go as they are, without encoding/json's compaction.

// appendMessage appends m as JSON.
func appendMessage(b []byte, m *message) []byte {
	b = append(b, `{"type":`...)
	b = jsonappend.String(b, m.Type)
	if m.Pid != 0 {
		b = append(b, `,"pid":`...)
		b = jsonappend.Int(b, int64(m.Pid))
	}
	if m.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonappend.String(b, m.Error)
	}
	if m.Message != "" {
		b = append(b, `,"message":`...)
		b = jsonappend.String(b, m.Message)
	}
	if m.Debug {
		b = append(b, `,"debug":true`...)
	}
	if len(m.State) > 0 {
		b = append(b, `,"state":`...)
		b = append(b, m.State...)
	}
	return append(b, '}')
}

// writeMessage sends m as one frame.
func writeMessage(conn io.Writer, m message) error {
	return nsexec.WriteFrame(conn, appendMessage(make([]byte, 0, 64+len(m.Error)+len(m.Message)+len(m.State)), &m))
}

// decodeMessage reads a message frame. Unknown members are skipped, as encoding/json does.
func decodeMessage(body []byte) (message, error) {
	var m message
	r := specjson.NewReader(body)
	err := r.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "type":
			m.Type, err = r.String()
		case "pid":
			m.Pid, err = intValue(r)
		case "error":
			m.Error, err = r.String()
		case "message":
			m.Message, err = r.String()
		case "debug":
			m.Debug, err = r.Bool()
		case "state":
			m.State, err = rawOrNil(r)
		default:
			err = r.Skip()
		}
		if err != nil {
			return err
		}
		return nil
	})
	if err == nil {
		err = r.End()
	}
	return m, err
}

// encodeInitConfig writes cfg as JSON.
func encodeInitConfig(cfg *initConfig) []byte {
	b := make([]byte, 0, 1024+len(cfg.Spec)+len(cfg.ContainerState)+16*len(cfg.Filter))
	b = append(b, `{"mode":`...)
	b = jsonappend.String(b, cfg.Mode)
	if len(cfg.Spec) > 0 {
		b = append(b, `,"spec":`...)
		b = append(b, cfg.Spec...)
	}
	if cfg.Process != nil {
		b = append(b, `,"process":`...)
		b = specjson.AppendProcess(b, cfg.Process)
	}
	if cfg.Rootfs != "" {
		b = append(b, `,"rootfs":`...)
		b = jsonappend.String(b, cfg.Rootfs)
	}
	if cfg.Bundle != "" {
		b = append(b, `,"bundle":`...)
		b = jsonappend.String(b, cfg.Bundle)
	}
	b = appendTrue(b, "noPivot", cfg.NoPivot)
	b = appendTrue(b, "noNewKeyring", cfg.NoNewKeyring)
	b = appendTrue(b, "mountNS", cfg.MountNS)
	b = appendTrue(b, "mountNSJoined", cfg.MountNSJoined)
	if len(cfg.SourceFDs) > 0 {
		// encoding/json sorts integer keys as the strings they become.
		keys := make([]string, 0, len(cfg.SourceFDs))
		byKey := make(map[string]int, len(cfg.SourceFDs))
		for k, v := range cfg.SourceFDs {
			s := strconv.Itoa(k)
			keys = append(keys, s)
			byKey[s] = v
		}
		b = append(b, `,"sourceFDs":`...)
		b = appendIntMap(b, keys, byKey)
	}
	b = appendTrue(b, "cgroupNS", cfg.CgroupNS)
	if len(cfg.Cgroups) > 0 {
		b = append(b, `,"cgroups":`...)
		b = jsonappend.StringMap(b, sortedKeys(cfg.Cgroups), cfg.Cgroups)
	}
	b = append(b, `,"consoleFD":`...)
	b = jsonappend.Int(b, int64(cfg.ConsoleFD))
	b = append(b, `,"fifoDirFD":`...)
	b = jsonappend.Int(b, int64(cfg.FifoDirFD))
	b = append(b, `,"preserveFDs":`...)
	b = jsonappend.Int(b, int64(cfg.PreserveFDs))
	if len(cfg.IDMapFDs) > 0 {
		keys := make([]string, 0, len(cfg.IDMapFDs))
		for k := range cfg.IDMapFDs {
			keys = append(keys, k)
		}
		b = append(b, `,"idmapFDs":`...)
		b = appendIntMap(b, keys, cfg.IDMapFDs)
	}
	b = appendTrue(b, "hooks", cfg.Hooks)
	b = appendTrue(b, "selinux", cfg.SELinux)
	if len(cfg.Filter) > 0 {
		b = append(b, `,"filter":[`...)
		for i, f := range cfg.Filter {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Code":`...)
			b = jsonappend.Uint(b, uint64(f.Code))
			b = append(b, `,"Jt":`...)
			b = jsonappend.Uint(b, uint64(f.Jt))
			b = append(b, `,"Jf":`...)
			b = jsonappend.Uint(b, uint64(f.Jf))
			b = append(b, `,"K":`...)
			b = jsonappend.Uint(b, uint64(f.K))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if cfg.FilterFlags != 0 {
		b = append(b, `,"filterFlags":`...)
		b = jsonappend.Uint(b, uint64(cfg.FilterFlags))
	}
	b = appendTrue(b, "filterNotify", cfg.FilterNotify)
	b = append(b, `,"seccompFD":`...)
	b = jsonappend.Int(b, int64(cfg.SeccompFD))
	if cfg.SeccompMetadata != "" {
		b = append(b, `,"seccompMetadata":`...)
		b = jsonappend.String(b, cfg.SeccompMetadata)
	}
	if len(cfg.ContainerState) > 0 {
		b = append(b, `,"containerState":`...)
		b = append(b, cfg.ContainerState...)
	}
	if len(cfg.CgroupTasks) > 0 {
		b = append(b, `,"cgroupTasks":[`...)
		for i, t := range cfg.CgroupTasks {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"fd":`...)
			b = jsonappend.Int(b, int64(t.FD))
			b = append(b, `,"path":`...)
			b = jsonappend.String(b, t.Path)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendTrue appends `,"name":true` when v is set (an omitempty bool after the first member).
func appendTrue(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	return append(b, `":true`...)
}

// appendIntMap appends a JSON object of integers, keys sorted.
func appendIntMap(b []byte, keys []string, m map[string]int) []byte {
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonappend.String(b, k)
		b = append(b, ':')
		b = jsonappend.Int(b, int64(m[k]))
	}
	return append(b, '}')
}
