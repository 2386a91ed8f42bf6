package client

import (
	"net/url"
	"strings"
)

// Link is one link of an RFC 8288 Link header: `<target>; rel="next"; type="..."`.
type Link struct {
	Target string
	Params map[string]string // lower-cased names, unquoted values
}

// ParseLinks parses a Link header value (links separated by commas). It is lenient: a link it
// cannot read ends the list.
func ParseLinks(h string) []Link {
	p := &hparser{s: h}
	var out []Link
	for {
		p.skipSpaceAndCommas()
		if p.eof() || p.peek() != '<' {
			return out
		}
		end := strings.IndexByte(p.s[p.i:], '>')
		if end < 0 {
			return out
		}
		l := Link{Target: strings.TrimSpace(p.s[p.i+1 : p.i+end])}
		p.i += end + 1
		for {
			p.skipSpace()
			if p.peek() != ';' {
				break
			}
			p.i++
			p.skipSpace()
			name := p.token()
			if name == "" {
				return append(out, l)
			}
			p.skipSpace()
			val := ""
			if p.peek() == '=' {
				p.i++
				p.skipSpace()
				if p.peek() == '"' {
					v, ok := p.quoted()
					if !ok {
						return append(out, l)
					}
					val = v
				} else {
					val = p.token()
				}
			}
			if l.Params == nil {
				l.Params = map[string]string{}
			}
			name = strings.ToLower(name)
			if _, dup := l.Params[name]; !dup { // RFC 8288: the first occurrence counts
				l.Params[name] = val
			}
		}
		out = append(out, l)
		p.skipSpace()
		if !p.eof() && p.peek() != ',' {
			return out
		}
	}
}

// nextLink finds the rel="next" link among the Link headers and resolves it against the request's
// URL. It returns nil when there is none.
func nextLink(headers []string, base *url.URL) (*url.URL, error) {
	for _, h := range headers {
		for _, l := range ParseLinks(h) {
			for _, rel := range strings.Fields(l.Params["rel"]) {
				if strings.EqualFold(rel, "next") {
					u, err := url.Parse(l.Target)
					if err != nil {
						return nil, err
					}
					return base.ResolveReference(u), nil
				}
			}
		}
	}
	return nil, nil
}
