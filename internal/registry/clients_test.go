package registry

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/testimage"
)

// Real clients against the registry: skopeo and podman (Debian packages), oras and crane (pinned
// in tools/clients, built into .cache/bin by scripts/install-deps.sh). Images are made here from
// the host's busybox (internal/testimage): nothing comes from the network. Every client talks
// plain HTTP to 127.0.0.1 and keeps its state (credentials, image storage) in the test's
// temporary directories.

// moduleRoot is the directory of the main go.mod, above the package directory the test runs in.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/berth-dev/berth\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no github.com/berth-dev/berth go.mod above the test's directory")
		}
		dir = parent
	}
}

// findClient finds a client that scripts/install-deps.sh installs: its absence is a failure.
func findClient(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(moduleRoot(t), ".cache", "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("%s not found on PATH nor in .cache/bin: scripts/install-deps.sh (make deps) installs it", name)
	return ""
}

// runClient runs a client and returns its standard output; a failure shows both outputs.
func runClient(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// tagsOf lists a repository's tags through the API.
func (h *harness) tagsOf(repo string) []string {
	h.t.Helper()
	r := h.do("GET", "/v2/"+repo+"/tags/list", nil)
	wantStatus(h.t, "tags of "+repo, r, http.StatusOK)
	var tl specv1.TagList
	if err := json.Unmarshal(r.body, &tl); err != nil {
		h.t.Fatal(err)
	}
	return tl.Tags
}

// manifestDigest is the digest the registry serves for repo:ref.
func (h *harness) manifestDigest(repo, ref string) string {
	h.t.Helper()
	r := h.do("HEAD", "/v2/"+repo+"/manifests/"+ref, nil, "Accept", ocispec.MediaTypeImageManifest+","+ocispec.MediaTypeImageIndex+",application/vnd.docker.distribution.manifest.v2+json")
	wantStatus(h.t, "HEAD "+repo+":"+ref, r, http.StatusOK)
	return r.h.Get("Docker-Content-Digest")
}

func TestClients(t *testing.T) {
	if testing.Short() {
		t.Skip("real registry clients (skopeo, podman, oras, crane) run in the integration pass: go test as root without -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the busybox test image has files owned by uid 1000, and podman runs as root here")
	}
	h := newHarness(t, func(c *Config) { c.Delete.Tags = true })
	host := strings.TrimPrefix(h.url, "http://")
	work := t.TempDir()
	// clients read credentials and policies from HOME and XDG dirs: give them empty ones
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"REGISTRY_AUTH_FILE=" + filepath.Join(home, "auth.json"), "XDG_RUNTIME_DIR=" + filepath.Join(work, "run")}
	_ = os.MkdirAll(filepath.Join(work, "run"), 0o700)
	if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	rootfs := filepath.Join(work, "rootfs")
	if err := testimage.Busybox(rootfs); err != nil {
		t.Fatalf("busybox root filesystem (scripts/install-deps.sh installs busybox-static): %v", err)
	}
	imgCfg := testimage.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}
	ociArchive := filepath.Join(work, "busybox-oci.tar")
	if err := testimage.OCIArchive(rootfs, ociArchive, "localhost/busybox:latest", imgCfg); err != nil {
		t.Fatal(err)
	}
	dockerArchive := filepath.Join(work, "busybox-docker.tar")
	if err := testimage.DockerArchive(rootfs, dockerArchive, "localhost/busybox:latest", imgCfg); err != nil {
		t.Fatal(err)
	}

	t.Run("skopeo", func(t *testing.T) {
		skopeo := findClient(t, "skopeo")
		// in, from an oci-archive and a docker-archive
		runClient(t, env, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "oci-archive:"+ociArchive, "docker://"+host+"/skopeo/busybox:oci")
		runClient(t, env, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "docker-archive:"+dockerArchive, "docker://"+host+"/skopeo/busybox:docker")
		if tags := h.tagsOf("skopeo/busybox"); !slices.Equal(tags, []string{"docker", "oci"}) {
			t.Errorf("tags after skopeo copy: %v", tags)
		}
		// out, to an OCI layout: the same manifest comes back
		layout := filepath.Join(work, "skopeo-out")
		runClient(t, env, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+host+"/skopeo/busybox:oci", "oci:"+layout+":out")
		var idx ocispec.Index
		b, err := os.ReadFile(filepath.Join(layout, "index.json"))
		if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 {
			t.Fatalf("layout written by skopeo: %s %v", b, err)
		}
		if want := h.manifestDigest("skopeo/busybox", "oci"); idx.Manifests[0].Digest.String() != want {
			t.Errorf("skopeo copied out %s, the registry serves %s", idx.Manifests[0].Digest, want)
		}
		// and every blob it wrote matches its digest
		for _, d := range []digest.Digest{idx.Manifests[0].Digest} {
			m, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", d.Encoded()))
			if err != nil || digest.FromBytes(m) != d {
				t.Fatalf("manifest blob %s: %v", d, err)
			}
			var man ocispec.Manifest
			_ = json.Unmarshal(m, &man)
			for _, l := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
				f, err := os.Open(filepath.Join(layout, "blobs", "sha256", l.Digest.Encoded()))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := digest.FromReader(f)
				f.Close()
				if got != l.Digest {
					t.Errorf("blob %s copied out as %s", l.Digest, got)
				}
			}
		}
		out := runClient(t, env, skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+host+"/skopeo/busybox:docker")
		if digest.FromString(out).String() != h.manifestDigest("skopeo/busybox", "docker") {
			t.Error("skopeo inspect --raw does not read the stored manifest")
		}
	})

	t.Run("podman", func(t *testing.T) {
		podman := findClient(t, "podman")
		pdir := filepath.Join(work, "podman")
		global := []string{"--root", filepath.Join(pdir, "root"), "--runroot", filepath.Join(pdir, "runroot"), "--tmpdir", filepath.Join(pdir, "tmp"),
			"--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"}
		p := func(args ...string) string {
			t.Helper()
			return runClient(t, env, podman, append(slices.Clone(global), args...)...)
		}
		t.Cleanup(func() {
			// vfs layers are plain directories; podman's own reset removes them and its locks
			_ = exec.Command(podman, append(slices.Clone(global), "system", "reset", "--force")...).Run()
		})
		p("pull", "-q", "oci-archive:"+ociArchive)
		p("tag", "localhost/busybox:latest", host+"/podman/busybox:v1")
		p("push", "--tls-verify=false", host+"/podman/busybox:v1")
		pushed := h.manifestDigest("podman/busybox", "v1")
		p("rmi", "-a", "-f")
		p("pull", "-q", "--tls-verify=false", host+"/podman/busybox:v1")
		out := p("image", "inspect", "--format", "{{.Digest}}", host+"/podman/busybox:v1")
		if strings.TrimSpace(out) != pushed {
			t.Errorf("podman pulled %s, the registry serves %s", strings.TrimSpace(out), pushed)
		}
		// pushed again as Docker schema 2
		p("push", "--tls-verify=false", "--format", "v2s2", host+"/podman/busybox:v1", "docker://"+host+"/podman/busybox:v2s2")
		r := h.do("GET", "/v2/podman/busybox/manifests/v2s2", nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json")
		if r.status != 200 || r.h.Get("Content-Type") != "application/vnd.docker.distribution.manifest.v2+json" {
			t.Errorf("podman --format v2s2: %d %q", r.status, r.h.Get("Content-Type"))
		}
	})

	t.Run("oras", func(t *testing.T) {
		oras := findClient(t, "oras")
		dir := filepath.Join(work, "oras")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := randBytes(t, 100<<10)
		if err := os.WriteFile(filepath.Join(dir, "artifact.bin"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "sig.txt"), []byte("signed"), 0o644); err != nil {
			t.Fatal(err)
		}
		o := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(oras, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		ref := host + "/oras/artifact:v1"
		o("push", "--plain-http", "--artifact-type", "application/vnd.berth.test", ref, "artifact.bin:application/vnd.berth.blob")
		subject := h.manifestDigest("oras/artifact", "v1")
		o("pull", "--plain-http", "-o", "pulled", ref)
		if got, err := os.ReadFile(filepath.Join(dir, "pulled", "artifact.bin")); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("oras pull: %v", err)
		}
		// attach through the referrers API (no fallback to tags allowed), then discover
		o("attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", "application/vnd.berth.sig", ref, "sig.txt:text/plain")
		out := o("discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--format", "json", ref)
		var disc struct {
			Referrers []ocispec.Descriptor `json:"referrers"`
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal([]byte(out), &disc); err != nil {
			t.Fatalf("oras discover --format json: %v\n%s", err, out)
		}
		refs := append(disc.Referrers, disc.Manifests...)
		if len(refs) != 1 || refs[0].ArtifactType != "application/vnd.berth.sig" {
			t.Fatalf("oras discover: %s", out)
		}
		r := h.do("GET", "/v2/oras/artifact/referrers/"+subject, nil)
		var idx ocispec.Index
		_ = json.Unmarshal(r.body, &idx)
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != refs[0].Digest {
			t.Errorf("referrers API after oras attach: %s", r.body)
		}
		if tags := h.tagsOf("oras/artifact"); !slices.Equal(tags, []string{"v1"}) {
			t.Errorf("oras attach left tags %v (a referrers tag means it fell back)", tags)
		}
		// the attached artifact pulls by digest
		o("pull", "--plain-http", "-o", "sig", host+"/oras/artifact@"+refs[0].Digest.String())
		if got, _ := os.ReadFile(filepath.Join(dir, "sig", "sig.txt")); string(got) != "signed" {
			t.Errorf("attached file pulled as %q", got)
		}
	})

	t.Run("crane", func(t *testing.T) {
		crane := findClient(t, "crane")
		c := func(args ...string) string {
			t.Helper()
			return runClient(t, env, crane, append(args, "--insecure")...)
		}
		// something to copy: pushed by crane itself from the docker-archive
		src := host + "/crane/src:v1"
		c("push", dockerArchive, src)
		srcDigest := h.manifestDigest("crane/src", "v1")
		// copy within the registry (crane mounts the blobs from the source repository)
		c("copy", src, host+"/crane/dst:v1")
		if got := h.manifestDigest("crane/dst", "v1"); got != srcDigest {
			t.Errorf("crane copy: %s, source %s", got, srcDigest)
		}
		c("tag", host+"/crane/dst:v1", "v2")
		c("tag", host+"/crane/dst:v1", "a0")
		ls := strings.Fields(c("ls", host+"/crane/dst"))
		if !slices.Equal(ls, []string{"a0", "v1", "v2"}) {
			t.Errorf("crane ls: %v", ls)
		}
		if d := strings.TrimSpace(c("digest", host+"/crane/dst:v2")); d != srcDigest {
			t.Errorf("crane digest of the new tag: %s", d)
		}
		// delete by digest removes the manifest and every tag of it
		c("delete", host+"/crane/dst@"+srcDigest)
		wantError(t, "manifest after crane delete", h.do("GET", "/v2/crane/dst/manifests/"+srcDigest, nil), http.StatusNotFound, codeManifestUnknown)
		if ls := strings.Fields(c("ls", host+"/crane/dst")); len(ls) != 0 {
			t.Errorf("crane ls after delete: %v", ls)
		}
		// the source is untouched
		if got := h.manifestDigest("crane/src", "v1"); got != srcDigest {
			t.Error("crane delete of the copy changed the source")
		}
	})
	checkServed(t, h.c, h.url)
	fsckBlobs(t, h.root)
}
