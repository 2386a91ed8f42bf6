package runtime

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/jsonappend"
	"github.com/berth-dev/berth/internal/specjson"
)

// The state file and the state handed to hooks are written and read by hand, without
// encoding/json: every command starts a fresh process, and encoding/json's per-type set-up cost
// more than everything else that reading or writing them does. The format is the one encoding/json
// gives the types' tags, so either can read what the other wrote (a test holds them together).

// encodeRecord writes r as JSON.
func encodeRecord(r *record) []byte {
	b := make([]byte, 0, 512+len(r.Spec)+len(r.Process))
	b = append(b, `{"version":`...)
	b = jsonappend.Int(b, int64(r.Version))
	b = append(b, `,"id":`...)
	b = jsonappend.String(b, r.ID)
	b = append(b, `,"bundle":`...)
	b = jsonappend.String(b, r.Bundle)
	b = append(b, `,"rootfs":`...)
	b = jsonappend.String(b, r.Rootfs)
	b = append(b, `,"created":"`...)
	b = r.Created.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","owner":`...)
	b = jsonappend.String(b, r.Owner)
	if r.Pid != 0 {
		b = append(b, `,"pid":`...)
		b = jsonappend.Int(b, int64(r.Pid))
	}
	if r.PidStart != 0 {
		b = append(b, `,"pidStart":`...)
		b = jsonappend.Uint(b, r.PidStart)
	}
	if r.Creating {
		b = append(b, `,"creating":true`...)
	}
	if len(r.Cgroups) > 0 {
		b = append(b, `,"cgroups":`...)
		b = jsonappend.StringMap(b, sortedKeys(r.Cgroups), r.Cgroups)
	}
	if r.Systemd {
		b = append(b, `,"systemd":true`...)
	}
	if r.NoPivot {
		b = append(b, `,"noPivot":true`...)
	}
	if len(r.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = jsonappend.StringMap(b, sortedKeys(r.Annotations), r.Annotations)
	}
	if len(r.Namespaces) > 0 {
		b = append(b, `,"namespaces":[`...)
		for i, n := range r.Namespaces {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = jsonappend.String(b, string(n.Type))
			if n.Path != "" {
				b = append(b, `,"path":`...)
				b = jsonappend.String(b, n.Path)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendHooks(b, "poststart", r.Poststart)
	b = appendHooks(b, "poststop", r.Poststop)
	if len(r.Process) > 0 {
		b = append(b, `,"process":`...)
		b = append(b, r.Process...)
	}
	if s := r.Seccomp; s != nil {
		b = append(b, `,"seccomp":{"filter":`...)
		if s.Filter == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, s.Filter)
			b = append(b, '"')
		}
		if s.Flags != 0 {
			b = append(b, `,"flags":`...)
			b = jsonappend.Uint(b, uint64(s.Flags))
		}
		if s.Notify {
			b = append(b, `,"notify":true`...)
		}
		if s.ListenerPath != "" {
			b = append(b, `,"listenerPath":`...)
			b = jsonappend.String(b, s.ListenerPath)
		}
		if s.Metadata != "" {
			b = append(b, `,"metadata":`...)
			b = jsonappend.String(b, s.Metadata)
		}
		b = append(b, '}')
	}
	b = append(b, `,"spec":`...)
	if len(r.Spec) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Spec...)
	}
	return append(b, '}')
}

func appendHooks(b []byte, name string, hooks []specs.Hook) []byte {
	if len(hooks) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, h := range hooks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"path":`...)
		b = jsonappend.String(b, h.Path)
		if len(h.Args) > 0 {
			b = append(b, `,"args":`...)
			b = jsonappend.Strings(b, h.Args)
		}
		if len(h.Env) > 0 {
			b = append(b, `,"env":`...)
			b = jsonappend.Strings(b, h.Env)
		}
		if h.Timeout != nil {
			b = append(b, `,"timeout":`...)
			b = jsonappend.Int(b, int64(*h.Timeout))
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// decodeRecord reads what encodeRecord (or encoding/json) wrote.
func decodeRecord(data []byte) (*record, error) {
	rec := &record{}
	r := specjson.NewReader(data)
	err := r.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "version":
			rec.Version, err = intValue(r)
		case "id":
			rec.ID, err = r.String()
		case "bundle":
			rec.Bundle, err = r.String()
		case "rootfs":
			rec.Rootfs, err = r.String()
		case "created":
			var s string
			if s, err = r.String(); err == nil {
				rec.Created, err = time.Parse(time.RFC3339, s)
			}
		case "owner":
			rec.Owner, err = r.String()
		case "pid":
			rec.Pid, err = intValue(r)
		case "pidStart":
			rec.PidStart, err = r.Uint64(64)
		case "creating":
			rec.Creating, err = r.Bool()
		case "cgroups":
			rec.Cgroups, err = stringMap(r)
		case "systemd":
			rec.Systemd, err = r.Bool()
		case "noPivot":
			rec.NoPivot, err = r.Bool()
		case "annotations":
			rec.Annotations, err = stringMap(r)
		case "namespaces":
			if r.Null() {
				return nil
			}
			err = r.Array(func() error {
				var n specs.LinuxNamespace
				err := r.Object(func(k []byte) error {
					var err error
					switch string(k) {
					case "type":
						var t string
						t, err = r.String()
						n.Type = specs.LinuxNamespaceType(t)
					case "path":
						n.Path, err = r.String()
					default:
						err = r.Skip()
					}
					return err
				})
				rec.Namespaces = append(rec.Namespaces, n)
				return err
			})
		case "poststart":
			rec.Poststart, err = decodeHooks(r)
		case "poststop":
			rec.Poststop, err = decodeHooks(r)
		case "process":
			rec.Process, err = rawOrNil(r)
		case "seccomp":
			if r.Null() {
				return nil
			}
			s := &seccompRecord{}
			rec.Seccomp = s
			err = r.Object(func(k []byte) error {
				var err error
				switch string(k) {
				case "filter":
					if r.Null() {
						return nil
					}
					var v string
					if v, err = r.String(); err == nil {
						s.Filter, err = base64.StdEncoding.DecodeString(v)
					}
				case "flags":
					var v uint64
					v, err = r.Uint64(strconv.IntSize)
					s.Flags = uint(v)
				case "notify":
					s.Notify, err = r.Bool()
				case "listenerPath":
					s.ListenerPath, err = r.String()
				case "metadata":
					s.Metadata, err = r.String()
				default:
					err = r.Skip()
				}
				return err
			})
		case "spec":
			rec.Spec, err = rawOrNil(r)
		default:
			err = r.Skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

func stringMap(r *specjson.Reader) (map[string]string, error) {
	if r.Null() {
		return nil, nil
	}
	m := map[string]string{}
	err := r.Object(func(k []byte) error {
		key := string(k) // before the next read, which may reuse k
		v, err := r.String()
		m[key] = v
		return err
	})
	return m, err
}

func stringList(r *specjson.Reader) ([]string, error) {
	if r.Null() {
		return nil, nil
	}
	out := []string{}
	err := r.Array(func() error {
		s, err := r.String()
		out = append(out, s)
		return err
	})
	return out, err
}

func decodeHooks(r *specjson.Reader) ([]specs.Hook, error) {
	if r.Null() {
		return nil, nil
	}
	hooks := []specs.Hook{}
	err := r.Array(func() error {
		var h specs.Hook
		err := r.Object(func(k []byte) error {
			var err error
			switch string(k) {
			case "path":
				h.Path, err = r.String()
			case "args":
				h.Args, err = stringList(r)
			case "env":
				h.Env, err = stringList(r)
			case "timeout":
				if r.Null() {
					return nil
				}
				var v int
				v, err = intValue(r)
				h.Timeout = &v
			default:
				err = r.Skip()
			}
			return err
		})
		hooks = append(hooks, h)
		return err
	})
	return hooks, err
}

// encodeState writes the runtime-spec state, as hooks and `state` read it.
func encodeState(s *specs.State) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"ociVersion":`...)
	b = jsonappend.String(b, s.Version)
	b = append(b, `,"id":`...)
	b = jsonappend.String(b, s.ID)
	b = append(b, `,"status":`...)
	b = jsonappend.String(b, string(s.Status))
	if s.Pid != 0 {
		b = append(b, `,"pid":`...)
		b = jsonappend.Int(b, int64(s.Pid))
	}
	b = append(b, `,"bundle":`...)
	b = jsonappend.String(b, s.Bundle)
	if len(s.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = jsonappend.StringMap(b, sortedKeys(s.Annotations), s.Annotations)
	}
	return append(b, '}')
}

// rawMember returns the raw value of a top-level member of a JSON object, matched as encoding/json
// and specjson match names (exactly, else ignoring case; the last one wins), or nil if it is absent
// or null, or if data is not an object.
func rawMember(data []byte, name string) []byte {
	var out []byte
	r := specjson.NewReader(data)
	_ = r.Object(func(key []byte) error {
		if !bytes.EqualFold(key, []byte(name)) {
			return r.Skip()
		}
		if r.Null() {
			out = nil
			return nil
		}
		raw, err := r.Raw()
		out = raw
		return err
	})
	return out
}
