package reference

import (
	_ "crypto/sha256" // registers the hashes go-digest computes for the supported algorithms
	_ "crypto/sha512"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// MaxNameLength bounds a repository name. The distribution-spec sets no limit; Distribution and
// the Docker clients refuse names over 255 characters, and so do we (a name becomes a path).
const MaxNameLength = 255

// MaxTagLength is the spec's limit: a first character and up to 127 more.
const MaxTagLength = 128

// Errors returned by the parsers, for errors.Is.
var (
	ErrNameInvalid   = errors.New("invalid repository name")
	ErrTagInvalid    = errors.New("invalid tag")
	ErrDigestInvalid = errors.New("invalid digest")
	// ErrDigestUnsupported is a well-formed digest whose algorithm this registry does not verify.
	ErrDigestUnsupported = errors.New("unsupported digest algorithm")
)

// ValidateName checks a repository name against the spec's grammar:
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrNameInvalid)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: longer than %d characters", ErrNameInvalid, MaxNameLength)
	}
	if !validName(name) {
		return fmt.Errorf("%w: %q does not match the distribution-spec grammar", ErrNameInvalid, name)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validName walks the grammar: components separated by '/', each a run of alphanumerics joined by
// one '.', one or two '_', or any number of '-'.
func validName(s string) bool {
	i := 0
	for {
		// a component: alnum+ (sep alnum+)*
		if i >= len(s) || !isAlnum(s[i]) {
			return false
		}
		for i < len(s) && isAlnum(s[i]) {
			i++
		}
		for i < len(s) && s[i] != '/' {
			switch s[i] {
			case '.':
				i++
			case '_':
				i++
				if i < len(s) && s[i] == '_' {
					i++
				}
			case '-':
				for i < len(s) && s[i] == '-' {
					i++
				}
			default:
				return false
			}
			if i >= len(s) || !isAlnum(s[i]) {
				return false
			}
			for i < len(s) && isAlnum(s[i]) {
				i++
			}
		}
		if i == len(s) {
			return true
		}
		i++ // the '/'
	}
}

// ValidateTag checks a tag against the spec's grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func ValidateTag(tag string) error {
	if !validTag(tag) {
		if tag == "" {
			return fmt.Errorf("%w: empty", ErrTagInvalid)
		}
		if len(tag) > MaxTagLength {
			return fmt.Errorf("%w: longer than %d characters", ErrTagInvalid, MaxTagLength)
		}
		return fmt.Errorf("%w: %q does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", ErrTagInvalid, tag)
	}
	return nil
}

func validTag(s string) bool {
	if s == "" || len(s) > MaxTagLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// encodedLen is the hex length of each algorithm whose digests this registry verifies.
func encodedLen(alg digest.Algorithm) int {
	switch alg {
	case digest.SHA256:
		return 64
	case digest.SHA512:
		return 128
	}
	return 0
}

// Supported reports whether digests of alg are accepted (and verified) by the registry.
func Supported(alg digest.Algorithm) bool { return encodedLen(alg) != 0 }

// ParseDigest parses "algorithm:encoded" and accepts sha256 and sha512 with lower-case hex of the
// right length (what the image-spec requires of them). A well-formed digest of another algorithm
// is ErrDigestUnsupported; anything else is ErrDigestInvalid.
func ParseDigest(s string) (digest.Digest, error) {
	colon := -1
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			colon = i
			break
		}
	}
	if colon <= 0 {
		return "", fmt.Errorf("%w: %q has no algorithm", ErrDigestInvalid, clip(s))
	}
	alg := digest.Algorithm(s[:colon])
	enc := s[colon+1:]
	n := encodedLen(alg)
	if n == 0 {
		// The image-spec grammar: algorithm [a-z0-9]+ ([+._-] [a-z0-9]+)*, encoded [a-zA-Z0-9=_-]+.
		if validAlgorithmName(string(alg)) && validEncoded(enc) {
			return "", fmt.Errorf("%w: %q", ErrDigestUnsupported, clip(string(alg)))
		}
		return "", fmt.Errorf("%w: %q", ErrDigestInvalid, clip(s))
	}
	if len(enc) != n {
		return "", fmt.Errorf("%w: %s digest needs %d hex characters, got %d", ErrDigestInvalid, alg, n, len(enc))
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: %q is not lower-case hex", ErrDigestInvalid, clip(s))
		}
	}
	return digest.Digest(s), nil
}

func validAlgorithmName(s string) bool {
	if s == "" {
		return false
	}
	prevSep := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c):
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

func validEncoded(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Reference is the <reference> of a manifest URL: exactly one of Tag and Digest is set.
type Reference struct {
	Tag    string
	Digest digest.Digest
}

func (r Reference) String() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// ParseReference parses the last segment of /v2/<name>/manifests/<reference>: a digest when it
// contains ':' (no tag can), a tag otherwise.
func ParseReference(s string) (Reference, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			d, err := ParseDigest(s)
			if err != nil {
				return Reference{}, err
			}
			return Reference{Digest: d}, nil
		}
	}
	if err := ValidateTag(s); err != nil {
		return Reference{}, err
	}
	return Reference{Tag: s}, nil
}

// clip keeps error messages bounded when the input is hostile.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
