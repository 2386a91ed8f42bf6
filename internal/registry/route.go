package registry

import (
	"net/url"
	"strings"
)

// route is a request path decoded into one of the spec's endpoints.
type route struct {
	kind string // one of the kind* constants
	name string // repository
	arg  string // digest, reference or upload id
}

const (
	kindBase      = "base"
	kindCatalog   = "catalog"
	kindTags      = "tags"
	kindManifest  = "manifest"
	kindBlob      = "blob"
	kindUpload    = "upload" // POST .../blobs/uploads/ (arg "") or .../blobs/uploads/<id>
	kindReferrers = "referrers"
	kindMetrics   = "metrics"
	kindUnknown   = "other"
)

// parseRoute decodes a path. Repository names contain slashes, so the endpoint is found from the
// end: the segment before the last names it (manifests, blobs, referrers, uploads). No name
// component can be one of those words' underscore-free spelling and end the path ambiguously,
// because the last segment is always the argument.
func parseRoute(path string) route {
	if path == "/v2/" || path == "/v2" {
		return route{kind: kindBase}
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/metrics" {
			return route{kind: kindMetrics}
		}
		return route{kind: kindUnknown}
	}
	if rest == "_catalog" {
		return route{kind: kindCatalog}
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: kindTags, name: name}
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return route{kind: kindUnknown}
	}
	last, before := rest[i+1:], rest[:i]
	j := strings.LastIndexByte(before, '/')
	if j < 0 {
		return route{kind: kindUnknown}
	}
	name, kind := before[:j], before[j+1:]
	switch kind {
	case "manifests":
		return route{kind: kindManifest, name: name, arg: last}
	case "referrers":
		return route{kind: kindReferrers, name: name, arg: last}
	case "blobs":
		if last == "uploads" { // POST without the trailing slash
			return route{kind: kindUpload, name: name}
		}
		return route{kind: kindBlob, name: name, arg: last}
	case "uploads":
		if n, ok := strings.CutSuffix(name, "/blobs"); ok {
			return route{kind: kindUpload, name: n, arg: last}
		}
	}
	return route{kind: kindUnknown}
}

// routeEscaped routes a path sent with escapes (or characters Go would have escaped, such as '!').
// The decoded path is used when decoding made no new '/' (a client that escapes ':' in a digest
// still reaches its manifest), the path as sent otherwise ("a%2Fb" is one name, which its
// validator refuses). Either way a name, tag or digest holding a character the grammars forbid
// gets the spec's error for it (NAME_INVALID, MANIFEST_INVALID, DIGEST_INVALID), not "no such
// endpoint".
func routeEscaped(u *url.URL) route {
	if strings.Count(u.Path, "/") == strings.Count(u.RawPath, "/") {
		return parseRoute(u.Path)
	}
	return parseRoute(u.RawPath)
}
