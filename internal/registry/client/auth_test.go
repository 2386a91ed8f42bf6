package client

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/registry"
)

func staticCreds(user, pass string) CredentialFunc {
	return func(context.Context, string, string) (Credential, error) {
		return Credential{Username: user, Password: pass}, nil
	}
}

func TestBasicAuth(t *testing.T) {
	ctx := context.Background()
	pw := writeHtpasswd(t, map[string]string{"alice": "s3cret"})
	reg := startRegistry(t, registry.Config{Auth: registry.AuthConfig{Htpasswd: &registry.HtpasswdConfig{Path: pw}}}, nil)
	src := newMemStore()
	ti := buildImage(t, src, 4, linuxAMD64, 100<<10, 10)
	ref := reg.ref(t, "private/app:v1")

	anon := newClient(t, Config{})
	_, err := anon.Push(ctx, src, ti.manifest, ref, PushOptions{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous Push = %v, want unauthorized", err)
	}
	t.Logf("anonymous: %v", err)
	wrong := newClient(t, Config{Credentials: staticCreds("alice", "wrong")})
	if _, err := wrong.Resolve(ctx, ref); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v, want unauthorized", err)
	}

	c := newClient(t, Config{Credentials: staticCreds("alice", "s3cret"), ChunkSize: 32 << 10})
	reg.log.reset()
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("Push with credentials: %v", err)
	}
	// One challenge, then credentials go with every request: there is one 401 only.
	if n := reg.log.count("HEAD", " 401") + reg.log.count("POST", " 401") + reg.log.count("PATCH", " 401") + reg.log.count("PUT", " 401"); n != 1 {
		t.Errorf("%d requests were challenged, want 1", n)
	}
	dst := newMemStore()
	if _, err := c.Pull(ctx, ref, dst, PullOptions{}); err != nil {
		t.Fatalf("Pull with credentials: %v", err)
	}
	checkPulled(t, src, dst, ti)
}

func TestBearerAuth(t *testing.T) {
	ctx := context.Background()
	ts := startTokenServer(t, "bob", "hunter2")
	reg := startRegistry(t, registry.Config{Auth: registry.AuthConfig{Token: ts.config()}}, nil)
	src := newMemStore()
	ti := buildImage(t, src, 5, linuxAMD64, 100<<10, 20<<10, 10)
	ref := reg.ref(t, "team/app:v1")

	// anonymous users get pull only: a push is refused
	anon := newClient(t, Config{})
	if _, err := anon.Push(ctx, src, ti.manifest, ref, PushOptions{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous Push = %v, want unauthorized", err)
	}

	c := newClient(t, Config{Credentials: staticCreds("bob", "hunter2"), ChunkSize: 32 << 10, Concurrency: 3})
	before := ts.issued.Load()
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("Push with a token: %v", err)
	}
	// Tokens are cached per scope: the push needs pull (HEAD) and pull,push (uploads, manifest),
	// whatever the number of blobs and requests.
	if n := ts.issued.Load() - before; n != 2 {
		t.Errorf("%d tokens issued for one push, want 2 (one per scope set: pull, and pull+push)", n)
	}
	issued := ts.issued.Load()

	dst := newMemStore()
	if _, err := anon.Pull(ctx, ref, dst, PullOptions{}); err != nil {
		t.Fatalf("anonymous Pull: %v", err)
	}
	checkPulled(t, src, dst, ti)
	dst2 := newMemStore()
	if _, err := c.Pull(ctx, ref, dst2, PullOptions{}); err != nil {
		t.Fatalf("Pull with the push client: %v", err)
	}
	if n := ts.issued.Load() - issued; n > 1 {
		t.Errorf("%d new tokens for two pulls, want at most 1 (the anonymous client's; the other's pull token is cached)", n)
	}

	// a cross-repository mount needs pull on the source repository, which the client asks for
	reg.log.reset()
	var pp progressLog
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "other/app:v1"), PushOptions{MountFrom: []string{"team/app"}, Progress: pp.fn}); err != nil {
		t.Fatalf("Push with mount: %v", err)
	}
	for _, d := range ti.blobs() {
		if p := pp.final(d); p.State != StateMounted {
			t.Errorf("blob %s: %v, want mounted", d.Digest, p.State)
		}
	}
	if n := reg.log.count("PATCH", ""); n != 0 || reg.log.count("POST", "mount=") != len(ti.blobs()) {
		t.Errorf("mount push: %d PATCHes, %d mount POSTs", n, reg.log.count("POST", "mount="))
	}
}
