package client

import (
	"runtime"
	"runtime/debug"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPlatform is the host's platform: GOOS, GOARCH and, for arm, the variant the binary was
// built for (GOARM; arm64 is v8).
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					p.Variant = "v" + strings.SplitN(s.Value, ",", 2)[0]
				}
			}
		}
	}
	return p
}

// normalize brings the spellings images use in the wild to GOOS/GOARCH names, and the variants
// that are implied to their explicit form (arm64 is v8, arm is v7 unless said otherwise).
func normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	switch arch {
	case "x86_64", "x86-64":
		arch = "amd64"
	case "i386", "i686":
		arch = "386"
	case "aarch64":
		arch = "arm64"
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	}
	switch arch {
	case "arm64":
		if variant == "" || variant == "8" {
			variant = "v8"
		}
	case "arm":
		if variant == "" {
			variant = "v7"
		} else if !strings.HasPrefix(variant, "v") {
			variant = "v" + variant
		}
	case "amd64":
		if variant == "v1" {
			variant = ""
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// platformScore says how well an image for have runs on want: 0 not at all, higher better. The
// same OS and architecture are required; the exact variant scores highest, and an older arm
// variant (v6 on a v7 host) still runs.
func platformScore(want ocispec.Platform, have *ocispec.Platform) int {
	if have == nil {
		return 0
	}
	w, h := normalize(want), normalize(*have)
	if w.OS != h.OS || w.Architecture != h.Architecture {
		return 0
	}
	if w.Variant == h.Variant {
		return 100
	}
	if w.Architecture == "arm" && len(w.Variant) == 2 && len(h.Variant) == 2 && h.Variant < w.Variant {
		return 50 + int(h.Variant[1]-'0')
	}
	if w.Variant == "" || h.Variant == "" {
		return 10
	}
	return 0
}

// selectPlatform picks the manifest of an index best for want: the highest score, the first in
// the index's order among equals (as the image-spec asks).
func selectPlatform(want ocispec.Platform, manifests []ocispec.Descriptor) (ocispec.Descriptor, bool) {
	best, bestScore := -1, 0
	for i, m := range manifests {
		if s := platformScore(want, m.Platform); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, false
	}
	return manifests[best], true
}

func platformString(p *ocispec.Platform) string {
	if p == nil {
		return "(no platform)"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
