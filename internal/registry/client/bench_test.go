package client

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/registry"
)

// BenchmarkPushPull pushes a 256 MiB five-layer image from a content store to berth's registry
// (in-process, over loopback HTTP) and pulls it into another content store, and prints the rates.
// Run it once: go test -run XXX -bench PushPull -benchtime 1x ./internal/registry/client/
func BenchmarkPushPull(b *testing.B) {
	ctx := context.Background()
	reg := startRegistry(b, registry.Config{}, nil)
	src, err := content.Open(ctx, content.Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var layers []ocispec.Descriptor
	var total int64
	for i := range 5 {
		d, err := src.WriteBytes(ctx, ocispec.MediaTypeImageLayerGzip, randomBytes(uint64(1000+i), 256<<20/5))
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, d)
		total += d.Size
	}
	cfg, _ := src.WriteBytes(ctx, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
	m, _ := src.WriteBytes(ctx, ocispec.MediaTypeImageManifest, mb)
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := range b.N {
		ref, _ := c.ParseReference(fmt.Sprintf("%s/bench/app%d:v1", reg.host, i))
		t0 := time.Now()
		if _, err := c.Push(ctx, src, m, ref, PushOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		dst, err := content.Open(ctx, content.Config{Root: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Pull(ctx, ref, dst, PullOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		dst.Close()
		mib := float64(total) / (1 << 20)
		fmt.Printf("push_mibs: %.0f\npull_mibs: %.0f\n", mib/t1.Sub(t0).Seconds(), mib/t2.Sub(t1).Seconds())
	}
}
