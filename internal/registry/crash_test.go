package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
)

// The crash tests run `berth registry serve` as a separate process and kill it with SIGKILL:
// nothing of the server's own clean-up runs, as after a crash (the page cache survives, as it
// does when only the process dies).

// buildBerth compiles cmd/berth into dir.
func buildBerth(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the berth binary (go build needs the module cache): runs in the integration pass, go test without -short")
	}
	out := filepath.Join(t.TempDir(), "berth")
	cmd := exec.Command(goBinary(), "build", "-o", out, "github.com/berth-dev/berth/cmd/berth")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/berth: %v\n%s", err, b)
	}
	return out
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// process is a `berth registry serve` subprocess.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

// serve starts `berth registry serve` on a free loopback port over root, and waits until it
// listens (it logs the address it bound).
func serve(t *testing.T, bin, root string, extra ...string) *process {
	t.Helper()
	args := append([]string{"registry", "serve", "--addr", "127.0.0.1:0", "--root", root}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { p.kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "registry listening" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("berth registry serve exited before listening:\n%s", p.logText())
	}
	return p
}

func (p *process) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL and waits for the process to be gone. It is not an error if it is.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// client is an HTTP client for a process that may be killed under it.
func crashClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 32},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// waitFor polls the disk until cond holds: the test waits for the server to have done something,
// not for a time.
func waitFor(t *testing.T, p *process, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("the registry exited while waiting for %s:\n%s", what, p.logText())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// uploadBytes is the total size of the data of every upload in progress under root.
func uploadBytes(root string) int64 {
	var n int64
	ents, _ := os.ReadDir(filepath.Join(root, "uploads"))
	for _, e := range ents {
		if fi, err := os.Stat(filepath.Join(root, "uploads", e.Name(), "data")); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// slowSend starts a request whose body is data[:sent] followed by a stall until the test ends: it
// is in flight when the server is killed.
func slowSend(t *testing.T, c *http.Client, method, url string, data []byte, sent int, hdr ...string) {
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(data))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	go func() { _, _ = pw.Write(data[:sent]) }()
	go func() {
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
}

// fsckBlobs checks that every file in the blob store holds the content its name says: nothing
// partial or corrupt is there to be served. It returns how many blobs there are.
func fsckBlobs(t *testing.T, root string) int {
	t.Helper()
	n := 0
	base := filepath.Join(root, "blobs")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 3 {
			t.Errorf("fsck: unexpected file in the blob store: %s", rel)
			return nil
		}
		want := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		got, err := want.Algorithm().FromReader(f)
		if err != nil {
			return err
		}
		if got != want {
			t.Errorf("fsck: blob %s holds content %s", want, got)
		}
		n++
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("fsck: %v", err)
	}
	return n
}

// checkServed walks the registry through its API (catalog, tags, manifests, the blobs and child
// manifests each refers to) and fails on anything missing or not matching its digest. It returns
// how many manifests it read.
func checkServed(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	r := doReq(t, c, "GET", base+"/v2/_catalog", nil)
	wantStatus(t, "catalog", r, http.StatusOK)
	var cat specv1.RepositoryList
	if err := json.Unmarshal(r.body, &cat); err != nil {
		t.Fatal(err)
	}
	n := 0
	var check func(repo, ref string)
	check = func(repo, ref string) {
		r := doReq(t, c, "GET", base+"/v2/"+repo+"/manifests/"+ref, nil)
		if r.status != http.StatusOK {
			t.Errorf("%s:%s is listed but answers %d %s", repo, ref, r.status, r.body)
			return
		}
		d := digest.Digest(r.h.Get("Docker-Content-Digest"))
		if d.Validate() != nil || d.Algorithm().FromBytes(r.body) != d {
			t.Errorf("%s:%s: content does not match its digest %s", repo, ref, d)
			return
		}
		n++
		m, err := manifest.Parse(r.h.Get("Content-Type"), r.body)
		if err != nil {
			t.Errorf("%s:%s: stored manifest does not parse: %v", repo, ref, err)
			return
		}
		for _, b := range m.Blobs {
			br := doReq(t, c, "GET", base+"/v2/"+repo+"/blobs/"+b.Digest.String(), nil)
			if br.status != http.StatusOK || int64(len(br.body)) != b.Size || b.Digest.Algorithm().FromBytes(br.body) != b.Digest {
				t.Errorf("%s@%s refers to blob %s, served as %d with %d bytes", repo, d, b.Digest, br.status, len(br.body))
			}
		}
		for _, child := range m.Manifests {
			check(repo, child.Digest.String())
		}
	}
	for _, repo := range cat.Repositories {
		r := doReq(t, c, "GET", base+"/v2/"+repo+"/tags/list", nil)
		wantStatus(t, "tags of "+repo, r, http.StatusOK)
		var tl specv1.TagList
		_ = json.Unmarshal(r.body, &tl)
		for _, tag := range tl.Tags {
			check(repo, tag)
		}
	}
	return n
}

func runGC(t *testing.T, bin, root string, args ...string) map[string]string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"registry", "gc", "--root", root}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("berth registry gc: %v\n%s", err, out)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			kv[k] = v
		}
	}
	return kv
}

func TestCrash(t *testing.T) {
	bin := buildBerth(t)

	t.Run("mid-upload and mid-manifest-put", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		c := crashClient()
		p := serve(t, bin, root)
		h := &harness{t: t, url: p.url, root: root, c: c}
		img := randomImage(t, 1, 1000)
		h.pushBlob("crash", img.config)
		h.pushBlob("crash", img.layers[0])

		big := randBytes(t, 8<<20)
		bigD := digest.FromBytes(big)
		chunked := randBytes(t, 6<<20)
		chunkedD := digest.FromBytes(chunked)
		// a monolithic upload, half sent
		slowSend(t, c, "POST", p.url+"/v2/crash/blobs/uploads/?digest="+bigD.String(), big, 4<<20, "Content-Type", "application/octet-stream")
		// a chunked upload: a first chunk done, the second half sent
		loc := h.startUpload("crash")
		wantStatus(t, "first chunk", h.do("PATCH", loc, chunked[:1<<20], "Content-Range", fmt.Sprintf("0-%d", 1<<20-1)), http.StatusAccepted)
		slowSend(t, c, "PATCH", p.url+loc, chunked[1<<20:4<<20], 2<<20, "Content-Range", fmt.Sprintf("%d-%d", 1<<20, 4<<20-1))
		// the final PUT of another upload, with its body, half sent
		loc2 := h.startUpload("crash")
		slowSend(t, c, "PUT", p.url+loc2+"?digest="+bigD.String(), big, 3<<20, "Content-Range", fmt.Sprintf("0-%d", len(big)-1))
		// a manifest put, half sent
		slowSend(t, c, "PUT", p.url+"/v2/crash/manifests/v1", img.manifest, len(img.manifest)/2, "Content-Type", ocispec.MediaTypeImageManifest)

		// wait until the server has written most of what was sent, then kill it
		// (it reads bodies in 1 MiB blocks: all of what was sent, 1+2+4+3 MiB, reaches the disk)
		waitFor(t, p, "the uploads to be on disk", func() bool { return uploadBytes(root) >= 10<<20 })
		p.kill()

		p2 := serve(t, bin, root)
		h.url = p2.url
		if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 1 {
			t.Errorf("after a restart tmp/ holds %d directories, want the new process's only", len(ents))
		}
		fsckBlobs(t, root)
		for _, d := range []digest.Digest{bigD, chunkedD} {
			for _, m := range []string{"HEAD", "GET"} {
				wantError(t, m+" of a blob whose upload was killed", h.do(m, "/v2/crash/blobs/"+d.String(), nil), http.StatusNotFound, codeBlobUnknown)
			}
			if _, err := os.Stat(filepath.Join(root, "blobs", "sha256", d.Encoded()[:2], d.Encoded())); err == nil {
				t.Errorf("blob %s is in the store", d)
			}
		}
		wantError(t, "manifest whose put was killed", h.do("GET", "/v2/crash/manifests/v1", nil), http.StatusNotFound, codeManifestUnknown)
		wantError(t, "manifest whose put was killed, by digest", h.do("GET", "/v2/crash/manifests/"+img.digest.String(), nil), http.StatusNotFound, codeManifestUnknown)

		// the chunked upload goes on from what reached the disk, and commits the right content
		off := h.uploadSize(loc)
		if off != 3<<20 {
			t.Fatalf("the killed upload is at %d bytes", off)
		}
		wantStatus(t, "resume", h.do("PATCH", loc, chunked[off:], "Content-Range", fmt.Sprintf("%d-%d", off, len(chunked)-1)), http.StatusAccepted)
		wantStatus(t, "commit resumed upload", h.do("PUT", loc+"?digest="+chunkedD.String(), nil), http.StatusCreated)
		if r := h.do("GET", "/v2/crash/blobs/"+chunkedD.String(), nil); !bytes.Equal(r.body, chunked) {
			t.Fatal("resumed upload does not read back")
		}
		h.pushImage("crash", "v1", img)

		// the abandoned uploads (the monolithic one and loc2) are garbage, collected while serving
		if n := len(mustReadDir(t, filepath.Join(root, "uploads"))); n != 2 {
			t.Errorf("%d uploads on disk, want the 2 abandoned ones", n)
		}
		dry := runGC(t, bin, root, "--dry-run", "--upload-ttl", "1ns")
		if dry["uploads_deleted"] != "2" || len(mustReadDir(t, filepath.Join(root, "uploads"))) != 2 {
			t.Errorf("dry run: %v, and it must delete nothing", dry)
		}
		rep := runGC(t, bin, root, "--upload-ttl", "1ns", "--grace", "0s")
		if rep["uploads_deleted"] != "2" {
			t.Errorf("gc: %v, want 2 uploads deleted", rep)
		}
		if n := len(mustReadDir(t, filepath.Join(root, "uploads"))); n != 0 {
			t.Errorf("%d uploads left after gc", n)
		}
		if checkServed(t, c, p2.url) != 1 {
			t.Error("the image pushed after the restart is not served")
		}
		fsckBlobs(t, root)
	})

	// Kills that land inside manifest puts: manifests of many layers take a while to check and
	// write; the server dies as soon as the first of a batch is linked, the others in flight.
	t.Run("inside manifest writes", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		c := crashClient()
		p := serve(t, bin, root)
		h := &harness{t: t, url: p.url, root: root, c: c}
		cfg := []byte(`{"os":"linux"}`)
		var layers [][]byte
		for i := range 300 {
			layers = append(layers, []byte(fmt.Sprintf("layer %d", i)))
		}
		for _, b := range append([][]byte{cfg}, layers...) {
			h.pushBlob("m", b)
		}
		links := filepath.Join(root, "repos", "m", "_manifests", "sha256")
		var all []image
		for round := range 4 {
			var batch []image
			for i := range 8 {
				batch = append(batch, makeImage(t, cfg, layers, func(m *ocispec.Manifest) {
					m.Annotations = map[string]string{"round": fmt.Sprint(round), "i": fmt.Sprint(i)}
				}))
			}
			before := 0
			if ents, err := os.ReadDir(links); err == nil {
				before = len(ents)
			}
			for i, img := range batch {
				go func() {
					req, _ := http.NewRequest("PUT", p.url+fmt.Sprintf("/v2/m/manifests/r%d-%d", round, i), bytes.NewReader(img.manifest))
					req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
					if resp, err := c.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
			waitFor(t, p, "a manifest link", func() bool {
				ents, _ := os.ReadDir(links)
				return len(ents) > before
			})
			p.kill()
			p = serve(t, bin, root)
			h.url = p.url
			all = append(all, batch...)
			// every manifest is either absent or whole, by digest as by tag
			stored := 0
			for _, img := range all {
				r := h.do("GET", "/v2/m/manifests/"+img.digest.String(), nil)
				switch {
				case r.status == http.StatusNotFound:
				case r.status == http.StatusOK && bytes.Equal(r.body, img.manifest):
					stored++
				default:
					t.Errorf("manifest %s after a kill: %d, %d bytes", img.digest, r.status, len(r.body))
				}
			}
			tagged := checkServed(t, c, p.url)
			t.Logf("round %d: %d of %d manifests stored, %d tagged", round, stored, len(all), tagged)
		}
		fsckBlobs(t, root)
	})

	t.Run("under load", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		c := crashClient()
		p := serve(t, bin, root)
		type acked struct {
			repo, tag string
			img       image
		}
		var (
			mu    sync.Mutex
			done  []acked
			count atomic.Int64
			stop  atomic.Bool
			wg    sync.WaitGroup
		)
		shared := randBytes(t, 256<<10) // every worker pushes this one too
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				repo := fmt.Sprintf("load/w%d", w)
				for i := 0; !stop.Load(); i++ {
					img := makeImage(t, []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)), [][]byte{shared, randBytes(t, 64<<10+i)}, nil)
					if !pushQuiet(c, p.url, repo, img, i%2 == 0) {
						return // the server is gone
					}
					tag := fmt.Sprintf("t%d", i)
					req, _ := http.NewRequest("PUT", p.url+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(img.manifest))
					req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
					resp, err := c.Do(req)
					if err != nil {
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						t.Errorf("manifest put: %d", resp.StatusCode)
						return
					}
					mu.Lock()
					done = append(done, acked{repo, tag, img})
					mu.Unlock()
					count.Add(1)
				}
			}()
		}
		// kill once enough pushes were acknowledged, with the workers still pushing
		waitFor(t, p, "acknowledged pushes", func() bool { return count.Load() >= 30 })
		p.kill()
		stop.Store(true)
		wg.Wait()

		p2 := serve(t, bin, root)
		blobs := fsckBlobs(t, root)
		served := checkServed(t, c, p2.url)
		mu.Lock()
		defer mu.Unlock()
		for _, a := range done {
			r := doReq(t, c, "GET", p2.url+"/v2/"+a.repo+"/manifests/"+a.tag, nil)
			if r.status != http.StatusOK || !bytes.Equal(r.body, a.img.manifest) {
				t.Errorf("acknowledged push %s:%s lost: %d", a.repo, a.tag, r.status)
			}
		}
		if served < len(done) {
			t.Errorf("%d manifests served, %d were acknowledged", served, len(done))
		}
		t.Logf("killed after %d acknowledged pushes; %d manifests and %d blobs after the restart", len(done), served, blobs)
		// a collection with no grace while serving keeps everything referenced and drops the rest
		rep := runGC(t, bin, root, "--grace", "0s", "--upload-ttl", "1ns")
		t.Logf("gc: %v", rep)
		// An upload whose commit was cut by the kill after its data became the blob is left
		// without data; the collector gives such a directory a minute (a commit in flight looks
		// the same) before removing it.
		left := mustReadDir(t, filepath.Join(root, "uploads"))
		for _, e := range left {
			dir := filepath.Join(root, "uploads", e.Name())
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("upload %s with data left after gc", e.Name())
			}
			old := time.Now().Add(-2 * time.Minute)
			_ = os.Chtimes(dir, old, old)
		}
		if len(left) > 0 {
			t.Logf("%d uploads without data left by commits the kill cut short", len(left))
			runGC(t, bin, root, "--upload-ttl", "1ns")
			if n := len(mustReadDir(t, filepath.Join(root, "uploads"))); n != 0 {
				t.Errorf("%d uploads left after a minute", n)
			}
		}
		if checkServed(t, c, p2.url) != served {
			t.Error("gc changed what is served")
		}
		fsckBlobs(t, root)
	})
}

// pushQuiet uploads an image's blobs (monolithically, or as a session with one chunk), reporting
// only whether the server answered as it should.
func pushQuiet(c *http.Client, base, repo string, img image, monolithic bool) bool {
	for _, b := range append([][]byte{img.config}, img.layers...) {
		d := digest.FromBytes(b).String()
		if monolithic {
			resp, err := c.Post(base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(b))
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return false
			}
			continue
		}
		resp, err := c.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		req, _ := http.NewRequest("PATCH", base+loc, bytes.NewReader(b))
		req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(b)-1))
		if resp, err = c.Do(req); err != nil {
			return false
		}
		resp.Body.Close()
		req, _ = http.NewRequest("PUT", base+loc+"?digest="+d, nil)
		if resp, err = c.Do(req); err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return false
		}
	}
	return true
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}
