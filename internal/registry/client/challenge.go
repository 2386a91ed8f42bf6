package client

import "strings"

// Challenge is one challenge of a WWW-Authenticate header (RFC 9110 section 11.6.1), e.g.
// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
type Challenge struct {
	// Scheme is lower-cased ("basic", "bearer").
	Scheme string
	// Params holds the auth-params with lower-cased names and unquoted values.
	Params map[string]string
	// Token68 is the token68 form a challenge may carry instead of parameters (rare).
	Token68 string
}

// ParseChallenges parses a WWW-Authenticate header value, which may hold several challenges
// separated by commas ("Basic realm=x, Bearer realm=y"). It is lenient: what it cannot read ends
// the list, and what came before is returned.
func ParseChallenges(h string) []Challenge {
	p := &hparser{s: h}
	var out []Challenge
	for {
		p.skipSpaceAndCommas()
		if p.eof() {
			return out
		}
		scheme := p.token()
		if scheme == "" {
			return out
		}
		c := Challenge{Scheme: strings.ToLower(scheme)}
		if p.skipSpace() > 0 || p.peek() == ',' || p.eof() {
			p.params(&c)
		} else {
			return out // e.g. "Basic=..." or junk after the scheme
		}
		out = append(out, c)
	}
}

// params reads the rest of a challenge: a token68, or auth-params up to the next scheme.
func (p *hparser) params(c *Challenge) {
	// token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", then end or comma
	save := p.i
	if t := p.token68(); t != "" {
		p.skipSpace()
		if p.eof() || p.peek() == ',' {
			c.Token68 = t
			return
		}
		p.i = save
	}
	for {
		p.skipSpace()
		start := p.i
		name := p.token()
		if name == "" {
			p.i = start
			return
		}
		p.skipSpace()
		if p.peek() != '=' {
			// a token not followed by '=' is the next challenge's scheme
			p.i = start
			return
		}
		p.i++
		p.skipSpace()
		var val string
		if p.peek() == '"' {
			v, ok := p.quoted()
			if !ok {
				p.i = len(p.s)
				return
			}
			val = v
		} else {
			val = p.token()
		}
		if c.Params == nil {
			c.Params = map[string]string{}
		}
		c.Params[strings.ToLower(name)] = val
		p.skipSpace()
		if p.peek() != ',' {
			return
		}
		// a comma separates params and challenges alike: look past it for "name ="
		after := p.i
		p.i++
		p.skipSpaceAndCommas()
		n := p.token()
		p.skipSpace()
		isParam := n != "" && p.peek() == '='
		p.i = after + 1
		if !isParam {
			return
		}
	}
}

// hparser scans an HTTP header value.
type hparser struct {
	s string
	i int
}

func (p *hparser) eof() bool { return p.i >= len(p.s) }

func (p *hparser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *hparser) skipSpace() int {
	n := 0
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
		n++
	}
	return n
}

func (p *hparser) skipSpaceAndCommas() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// isTchar is RFC 9110's tchar.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *hparser) token() string {
	start := p.i
	for !p.eof() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *hparser) token68() string {
	start := p.i
	for !p.eof() {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			p.i++
			continue
		}
		break
	}
	if p.i == start {
		return ""
	}
	for !p.eof() && p.s[p.i] == '=' {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string (the opening quote is at p.i) and unescapes it.
func (p *hparser) quoted() (string, bool) {
	p.i++
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.eof() {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}
