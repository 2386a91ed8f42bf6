package specjson

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/jsonappend"
)

// AppendProcess appends p as encoding/json writes a specs.Process: the members in the struct's
// order, with its omitempty rules, strings as jsonappend.String writes them (a test holds the two
// together). The runtime sends the process of
// an exec to the container half with it: encoding/json's first Marshal of the type tree costs some
// hundreds of microseconds in a fresh process, far more than the encoding.
func AppendProcess(b []byte, p *specs.Process) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	member := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if p.Terminal {
		member("terminal")
		b = append(b, "true"...)
	}
	if p.ConsoleSize != nil {
		member("consoleSize")
		b = append(b, `{"height":`...)
		b = jsonappend.Uint(b, uint64(p.ConsoleSize.Height))
		b = append(b, `,"width":`...)
		b = jsonappend.Uint(b, uint64(p.ConsoleSize.Width))
		b = append(b, '}')
	}
	member("user")
	b = appendUser(b, &p.User)
	if len(p.Args) > 0 {
		member("args")
		b = jsonappend.Strings(b, p.Args)
	}
	if p.CommandLine != "" {
		member("commandLine")
		b = jsonappend.String(b, p.CommandLine)
	}
	if len(p.Env) > 0 {
		member("env")
		b = jsonappend.Strings(b, p.Env)
	}
	member("cwd")
	b = jsonappend.String(b, p.Cwd)
	if c := p.Capabilities; c != nil {
		member("capabilities")
		b = appendCapabilities(b, c)
	}
	if len(p.Rlimits) > 0 {
		member("rlimits")
		b = append(b, '[')
		for i, r := range p.Rlimits {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = jsonappend.String(b, r.Type)
			b = append(b, `,"hard":`...)
			b = jsonappend.Uint(b, r.Hard)
			b = append(b, `,"soft":`...)
			b = jsonappend.Uint(b, r.Soft)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if p.NoNewPrivileges {
		member("noNewPrivileges")
		b = append(b, "true"...)
	}
	if p.ApparmorProfile != "" {
		member("apparmorProfile")
		b = jsonappend.String(b, p.ApparmorProfile)
	}
	if p.OOMScoreAdj != nil {
		member("oomScoreAdj")
		b = jsonappend.Int(b, int64(*p.OOMScoreAdj))
	}
	if s := p.Scheduler; s != nil {
		member("scheduler")
		b = appendScheduler(b, s)
	}
	if p.SelinuxLabel != "" {
		member("selinuxLabel")
		b = jsonappend.String(b, p.SelinuxLabel)
	}
	if io := p.IOPriority; io != nil {
		member("ioPriority")
		b = append(b, `{"class":`...)
		b = jsonappend.String(b, string(io.Class))
		b = append(b, `,"priority":`...)
		b = jsonappend.Int(b, int64(io.Priority))
		b = append(b, '}')
	}
	if a := p.ExecCPUAffinity; a != nil {
		member("execCPUAffinity")
		b = append(b, '{')
		if a.Initial != "" {
			b = append(b, `"initial":`...)
			b = jsonappend.String(b, a.Initial)
		}
		if a.Final != "" {
			if a.Initial != "" {
				b = append(b, ',')
			}
			b = append(b, `"final":`...)
			b = jsonappend.String(b, a.Final)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendUser(b []byte, u *specs.User) []byte {
	b = append(b, `{"uid":`...)
	b = jsonappend.Uint(b, uint64(u.UID))
	b = append(b, `,"gid":`...)
	b = jsonappend.Uint(b, uint64(u.GID))
	if u.Umask != nil {
		b = append(b, `,"umask":`...)
		b = jsonappend.Uint(b, uint64(*u.Umask))
	}
	if len(u.AdditionalGids) > 0 {
		b = append(b, `,"additionalGids":[`...)
		for i, g := range u.AdditionalGids {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonappend.Uint(b, uint64(g))
		}
		b = append(b, ']')
	}
	if u.Username != "" {
		b = append(b, `,"username":`...)
		b = jsonappend.String(b, u.Username)
	}
	return append(b, '}')
}

func appendCapabilities(b []byte, c *specs.LinuxCapabilities) []byte {
	b = append(b, '{')
	n := 0
	for _, set := range []struct {
		name string
		caps []string
	}{
		{"bounding", c.Bounding}, {"effective", c.Effective}, {"inheritable", c.Inheritable},
		{"permitted", c.Permitted}, {"ambient", c.Ambient},
	} {
		if len(set.caps) == 0 {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, '"')
		b = append(b, set.name...)
		b = append(b, '"', ':')
		b = jsonappend.Strings(b, set.caps)
	}
	return append(b, '}')
}

func appendScheduler(b []byte, s *specs.Scheduler) []byte {
	b = append(b, `{"policy":`...)
	b = jsonappend.String(b, string(s.Policy))
	if s.Nice != 0 {
		b = append(b, `,"nice":`...)
		b = jsonappend.Int(b, int64(s.Nice))
	}
	if s.Priority != 0 {
		b = append(b, `,"priority":`...)
		b = jsonappend.Int(b, int64(s.Priority))
	}
	if len(s.Flags) > 0 {
		b = append(b, `,"flags":[`...)
		for i, f := range s.Flags {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonappend.String(b, string(f))
		}
		b = append(b, ']')
	}
	if s.Runtime != 0 {
		b = append(b, `,"runtime":`...)
		b = jsonappend.Uint(b, s.Runtime)
	}
	if s.Deadline != 0 {
		b = append(b, `,"deadline":`...)
		b = jsonappend.Uint(b, s.Deadline)
	}
	if s.Period != 0 {
		b = append(b, `,"period":`...)
		b = jsonappend.Uint(b, s.Period)
	}
	return append(b, '}')
}
