package reference

import (
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// ErrImageInvalid is the class of errors of ParseImage that are not about one of the parts the
// other parsers check (name, tag, digest): an empty reference, a bad host, a missing host.
var ErrImageInvalid = errors.New("invalid image reference")

// ErrNoHost is a reference without a registry host when the caller supplied no default. berth has
// no implicit default registry (no Docker Hub): every reference says where it lives.
var ErrNoHost = fmt.Errorf("%w: no registry host", ErrImageInvalid)

// DefaultTag is the tag of a reference that names neither a tag nor a digest.
const DefaultTag = "latest"

// Image is an image reference as users write it: HOST[:PORT]/NAME[:TAG][@DIGEST].
type Image struct {
	// Host is the registry's host, with its port if any ("localhost:5000", "[::1]:5000").
	Host string
	// Name is the repository within the registry.
	Name string
	// Tag and Digest: at least one is set. When both are, the digest decides what is pulled and
	// the tag is informational (as in Docker and containerd).
	Tag    string
	Digest digest.Digest
}

// String writes the reference back in its canonical form.
func (i Image) String() string {
	s := i.Host + "/" + i.Name
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + string(i.Digest)
	}
	return s
}

// Repository is HOST/NAME.
func (i Image) Repository() string { return i.Host + "/" + i.Name }

// Reference is the <reference> of the manifest URL: the digest when there is one, else the tag.
func (i Image) Reference() string {
	if i.Digest != "" {
		return string(i.Digest)
	}
	return i.Tag
}

// ParseImage parses HOST[:PORT]/NAME[:TAG][@DIGEST]. The first path component is the host when it
// contains '.' or ':', is "localhost", or has an upper-case letter (which no repository name can),
// the rule Docker's clients follow. A reference without one is ErrNoHost unless defaultHost is set.
// Without a tag or digest the tag is DefaultTag.
func ParseImage(s, defaultHost string) (Image, error) {
	if s == "" {
		return Image{}, fmt.Errorf("%w: empty", ErrImageInvalid)
	}
	if len(s) > 4096 {
		return Image{}, fmt.Errorf("%w: longer than 4096 characters", ErrImageInvalid)
	}
	var img Image
	rest := s
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		d, err := ParseDigest(rest[at+1:])
		if err != nil {
			return Image{}, fmt.Errorf("image reference %q: %w", clip(s), err)
		}
		img.Digest = d
		rest = rest[:at]
	}
	if slash := strings.IndexByte(rest, '/'); slash >= 0 && isHost(rest[:slash]) {
		img.Host = rest[:slash]
		rest = rest[slash+1:]
		if err := validateHost(img.Host); err != nil {
			return Image{}, fmt.Errorf("image reference %q: %w", clip(s), err)
		}
	} else {
		if defaultHost == "" {
			return Image{}, fmt.Errorf("%w: %q (write HOST/NAME, e.g. localhost:5000/%s)", ErrNoHost, clip(s), clip(s))
		}
		if err := validateHost(defaultHost); err != nil {
			return Image{}, fmt.Errorf("default host: %w", err)
		}
		if !isHost(defaultHost) {
			// its String() would not parse back to the same reference
			return Image{}, fmt.Errorf("%w: default host %q does not look like one (no '.' or ':', not localhost)", ErrImageInvalid, clip(defaultHost))
		}
		img.Host = defaultHost
	}
	// A ':' after the last '/' starts the tag (before it, it could only be a port, handled above).
	if c := strings.LastIndexByte(rest, ':'); c >= 0 && c > strings.LastIndexByte(rest, '/') {
		img.Tag = rest[c+1:]
		rest = rest[:c]
		if err := ValidateTag(img.Tag); err != nil {
			return Image{}, fmt.Errorf("image reference %q: %w", clip(s), err)
		}
	}
	if err := ValidateName(rest); err != nil {
		return Image{}, fmt.Errorf("image reference %q: %w", clip(s), err)
	}
	img.Name = rest
	if img.Tag == "" && img.Digest == "" {
		img.Tag = DefaultTag
	}
	return img, nil
}

func isHost(s string) bool {
	return s == "localhost" || strings.ContainsAny(s, ".:[") || strings.ToLower(s) != s
}

// validateHost accepts a DNS name or IPv4 address, or a bracketed IPv6 address, each with an
// optional port.
func validateHost(h string) error {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return fmt.Errorf("%w: host %q: unterminated '['", ErrImageInvalid, clip(h))
		}
		host, port = h[1:end], h[end+1:]
		if host == "" || strings.Trim(host, "0123456789abcdefABCDEF:.%") != "" {
			return fmt.Errorf("%w: host %q is not an IPv6 address", ErrImageInvalid, clip(h))
		}
		if port != "" && port[0] != ':' {
			return fmt.Errorf("%w: host %q: junk after ']'", ErrImageInvalid, clip(h))
		}
	} else if c := strings.IndexByte(h, ':'); c >= 0 {
		host, port = h[:c], h[c:]
	}
	if port != "" {
		p := port[1:]
		if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
			return fmt.Errorf("%w: host %q: port is not a number", ErrImageInvalid, clip(h))
		}
	}
	if strings.HasPrefix(h, "[") {
		return nil
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("%w: host %q: empty or too long", ErrImageInvalid, clip(h))
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: host %q: bad DNS label %q", ErrImageInvalid, clip(h), clip(label))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: host %q: character %q", ErrImageInvalid, clip(h), c)
			}
		}
	}
	return nil
}
