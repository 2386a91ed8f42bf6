package specjson

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AppendProcess appends p as encoding/json writes a specs.Process: the members in the struct's
// order, with its omitempty rules, strings as AppendString writes them (a test holds the two
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
		b = AppendUint(b, uint64(p.ConsoleSize.Height))
		b = append(b, `,"width":`...)
		b = AppendUint(b, uint64(p.ConsoleSize.Width))
		b = append(b, '}')
	}
	member("user")
	b = appendUser(b, &p.User)
	if len(p.Args) > 0 {
		member("args")
		b = AppendStrings(b, p.Args)
	}
	if p.CommandLine != "" {
		member("commandLine")
		b = AppendString(b, p.CommandLine)
	}
	if len(p.Env) > 0 {
		member("env")
		b = AppendStrings(b, p.Env)
	}
	member("cwd")
	b = AppendString(b, p.Cwd)
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
			b = AppendString(b, r.Type)
			b = append(b, `,"hard":`...)
			b = AppendUint(b, r.Hard)
			b = append(b, `,"soft":`...)
			b = AppendUint(b, r.Soft)
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
		b = AppendString(b, p.ApparmorProfile)
	}
	if p.OOMScoreAdj != nil {
		member("oomScoreAdj")
		b = AppendInt(b, int64(*p.OOMScoreAdj))
	}
	if s := p.Scheduler; s != nil {
		member("scheduler")
		b = appendScheduler(b, s)
	}
	if p.SelinuxLabel != "" {
		member("selinuxLabel")
		b = AppendString(b, p.SelinuxLabel)
	}
	if io := p.IOPriority; io != nil {
		member("ioPriority")
		b = append(b, `{"class":`...)
		b = AppendString(b, string(io.Class))
		b = append(b, `,"priority":`...)
		b = AppendInt(b, int64(io.Priority))
		b = append(b, '}')
	}
	if a := p.ExecCPUAffinity; a != nil {
		member("execCPUAffinity")
		b = append(b, '{')
		if a.Initial != "" {
			b = append(b, `"initial":`...)
			b = AppendString(b, a.Initial)
		}
		if a.Final != "" {
			if a.Initial != "" {
				b = append(b, ',')
			}
			b = append(b, `"final":`...)
			b = AppendString(b, a.Final)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendUser(b []byte, u *specs.User) []byte {
	b = append(b, `{"uid":`...)
	b = AppendUint(b, uint64(u.UID))
	b = append(b, `,"gid":`...)
	b = AppendUint(b, uint64(u.GID))
	if u.Umask != nil {
		b = append(b, `,"umask":`...)
		b = AppendUint(b, uint64(*u.Umask))
	}
	if len(u.AdditionalGids) > 0 {
		b = append(b, `,"additionalGids":[`...)
		for i, g := range u.AdditionalGids {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendUint(b, uint64(g))
		}
		b = append(b, ']')
	}
	if u.Username != "" {
		b = append(b, `,"username":`...)
		b = AppendString(b, u.Username)
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
		b = AppendStrings(b, set.caps)
	}
	return append(b, '}')
}

func appendScheduler(b []byte, s *specs.Scheduler) []byte {
	b = append(b, `{"policy":`...)
	b = AppendString(b, string(s.Policy))
	if s.Nice != 0 {
		b = append(b, `,"nice":`...)
		b = AppendInt(b, int64(s.Nice))
	}
	if s.Priority != 0 {
		b = append(b, `,"priority":`...)
		b = AppendInt(b, int64(s.Priority))
	}
	if len(s.Flags) > 0 {
		b = append(b, `,"flags":[`...)
		for i, f := range s.Flags {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, string(f))
		}
		b = append(b, ']')
	}
	if s.Runtime != 0 {
		b = append(b, `,"runtime":`...)
		b = AppendUint(b, s.Runtime)
	}
	if s.Deadline != 0 {
		b = append(b, `,"deadline":`...)
		b = AppendUint(b, s.Deadline)
	}
	if s.Period != 0 {
		b = append(b, `,"period":`...)
		b = AppendUint(b, s.Period)
	}
	return append(b, '}')
}
