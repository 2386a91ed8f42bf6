package runtime

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/specjson"
)

// decodeInitConfig reads what the runtime half sent with encoding/json, without reflection: the
// container half decodes it once, in a fresh process, where encoding/json's per-type set-up would
// cost more than the rest of the decoding (see internal/specjson). A test checks it against
// encoding/json on a config with every field set.
func decodeInitConfig(body []byte) (*initConfig, error) {
	cfg := &initConfig{}
	r := specjson.NewReader(body)
	err := r.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "mode":
			cfg.Mode, err = r.String()
		case "spec":
			cfg.Spec, err = rawOrNil(r)
		case "process":
			var raw []byte
			if raw, err = rawOrNil(r); err == nil && raw != nil {
				cfg.Process = &specs.Process{}
				err = specjson.UnmarshalProcess(raw, cfg.Process)
			}
		case "rootfs":
			cfg.Rootfs, err = r.String()
		case "bundle":
			cfg.Bundle, err = r.String()
		case "noPivot":
			cfg.NoPivot, err = r.Bool()
		case "noNewKeyring":
			cfg.NoNewKeyring, err = r.Bool()
		case "mountNS":
			cfg.MountNS, err = r.Bool()
		case "mountNSJoined":
			cfg.MountNSJoined, err = r.Bool()
		case "sourceFDs":
			cfg.SourceFDs, err = intMap(r, func(k string) (int, error) { return strconv.Atoi(k) })
		case "cgroupNS":
			cfg.CgroupNS, err = r.Bool()
		case "cgroups":
			if r.Null() {
				return nil
			}
			cfg.Cgroups, err = stringMap(r)
		case "consoleFD":
			cfg.ConsoleFD, err = intValue(r)
		case "fifoDirFD":
			cfg.FifoDirFD, err = intValue(r)
		case "preserveFDs":
			cfg.PreserveFDs, err = intValue(r)
		case "idmapFDs":
			cfg.IDMapFDs, err = intMap(r, func(k string) (string, error) { return k, nil })
		case "hooks":
			cfg.Hooks, err = r.Bool()
		case "selinux":
			cfg.SELinux, err = r.Bool()
		case "filter":
			cfg.Filter, err = sockFilters(r)
		case "filterFlags":
			var v uint64
			v, err = r.Uint64(strconv.IntSize)
			cfg.FilterFlags = uint(v)
		case "filterNotify":
			cfg.FilterNotify, err = r.Bool()
		case "seccompFD":
			cfg.SeccompFD, err = intValue(r)
		case "seccompMetadata":
			cfg.SeccompMetadata, err = r.String()
		case "containerState":
			cfg.ContainerState, err = rawOrNil(r)
		case "cgroupTasks":
			if r.Null() {
				return nil
			}
			err = r.Array(func() error {
				var t cgroupTask
				err := r.Object(func(k []byte) error {
					var err error
					switch string(k) {
					case "fd":
						t.FD, err = intValue(r)
					case "path":
						t.Path, err = r.String()
					default:
						err = r.Skip()
					}
					return err
				})
				cfg.CgroupTasks = append(cfg.CgroupTasks, t)
				return err
			})
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
		return nil, fmt.Errorf("decode init config: %w", err)
	}
	return cfg, nil
}

// rawOrNil returns a member's raw value, or nil for null. The runtime half never sends null for
// these (they are omitempty), so nil and absent agree with encoding/json.
func rawOrNil(r *specjson.Reader) ([]byte, error) {
	if r.Null() {
		return nil, nil
	}
	// No copy: the frame it points into is not reused.
	return r.Raw()
}

func intValue(r *specjson.Reader) (int, error) {
	v, err := r.Int64(strconv.IntSize)
	return int(v), err
}

func intMap[K comparable](r *specjson.Reader, key func(string) (K, error)) (map[K]int, error) {
	if r.Null() {
		return nil, nil
	}
	m := map[K]int{}
	err := r.Object(func(k []byte) error {
		kk, err := key(string(k))
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		v, err := intValue(r)
		m[kk] = v
		return err
	})
	return m, err
}

func sockFilters(r *specjson.Reader) ([]unix.SockFilter, error) {
	if r.Null() {
		return nil, nil
	}
	var out []unix.SockFilter
	err := r.Array(func() error {
		var f unix.SockFilter
		err := r.Object(func(k []byte) error {
			var v uint64
			var err error
			switch string(k) {
			case "Code":
				v, err = r.Uint64(16)
				f.Code = uint16(v)
			case "Jt":
				v, err = r.Uint64(8)
				f.Jt = uint8(v)
			case "Jf":
				v, err = r.Uint64(8)
				f.Jf = uint8(v)
			case "K":
				v, err = r.Uint64(32)
				f.K = uint32(v)
			default:
				err = r.Skip()
			}
			return err
		})
		out = append(out, f)
		return err
	})
	return out, err
}
