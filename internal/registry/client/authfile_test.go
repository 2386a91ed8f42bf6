package client

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func writeFile(t *testing.T, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fakeHelpers puts docker-credential-NAME scripts on $PATH.
func fakeHelpers(t *testing.T, scripts map[string]string) {
	t.Helper()
	bin := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

func TestAuthFiles(t *testing.T) {
	dir := t.TempDir()
	// The helpers' protocol: "get", the server on stdin, JSON or "credentials not found" out.
	fakeHelpers(t, map[string]string{
		"gcloud": `[ "$1" = get ] || exit 2
read host
case "$host" in
gcr.example) echo '{"ServerURL":"gcr.example","Username":"oauth2accesstoken","Secret":"gtok"}' ;;
tok.gcr.example) echo '{"ServerURL":"tok.gcr.example","Username":"<token>","Secret":"refresh"}' ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
		"broken": "echo 'keychain locked' >&2; exit 3\n",
	})
	// containers-auth.json: per-host and per-namespace entries
	containers := writeFile(t, dir, "auth.json", `{"auths": {
		"reg.example:5000": {"auth": "`+b64("host:hpass")+`"},
		"reg.example:5000/team": {"auth": "`+b64("team:tpass")+`"},
		"reg.example:5000/team/special": {"auth": "`+b64("special:spass")+`"},
		"tok.example": {"identitytoken": "refresh-me"}
	}}`)
	// Docker's config.json: URL keys, a credential helper
	docker := writeFile(t, dir, "config.json", `{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+b64("hub:hubpass")+`"},
		"http://localhost:5000": {"username": "local", "password": "lpass"},
		"reg.example:5000": {"auth": "`+b64("shadowed:x")+`"}
	}, "credHelpers": {"gcr.example": "gcloud", "tok.gcr.example": "gcloud", "localhost:5000": "gcloud",
		"locked.example": "broken", "absent.example": "nosuch"}}`)

	f, err := LoadAuthFile(containers)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ host, repo, user string }{
		{"reg.example:5000", "other/app", "host"},
		{"reg.example:5000", "team/app", "team"},
		{"reg.example:5000", "team/special", "special"},
		{"reg.example:5000", "team/special/x", "special"},
		{"reg.example:5000", "teamx/app", "host"}, // a namespace is a whole path component
	}
	for _, c := range cases {
		cred, ok := f.Lookup(c.host, c.repo)
		if !ok || cred.Username != c.user {
			t.Errorf("Lookup(%s, %s) = %+v, %v; want user %s", c.host, c.repo, cred, ok, c.user)
		}
	}
	if _, ok := f.Lookup("reg.example", "x"); ok {
		t.Error("an entry for reg.example:5000 matched reg.example")
	}

	creds := CredentialsFromFiles(filepath.Join(dir, "missing.json"), containers, docker)
	ctx := context.Background()
	for _, c := range []struct {
		host, repo string
		want       Credential
	}{
		{"reg.example:5000", "a", Credential{Username: "host", Password: "hpass"}}, // the first file wins
		{"index.docker.io", "library/busybox", Credential{Username: "hub", Password: "hubpass"}},
		{"localhost:5000", "a", Credential{Username: "local", Password: "lpass"}},
		{"tok.example", "a", Credential{IdentityToken: "refresh-me"}},
		{"gcr.example", "a", Credential{Username: "oauth2accesstoken", Password: "gtok"}}, // from the helper
		{"tok.gcr.example", "a", Credential{IdentityToken: "refresh"}},
		{"unknown.example", "a", Credential{}},
	} {
		got, err := creds(ctx, c.host, c.repo)
		if err != nil || got != c.want {
			t.Errorf("credentials(%s, %s) = %+v, %v; want %+v", c.host, c.repo, got, err, c.want)
		}
	}

	// localhost:5000 has a helper, which has nothing for it: the "auths" entry answers (above). A
	// helper that fails, or is not there, is an error, not anonymous access.
	for _, host := range []string{"locked.example", "absent.example"} {
		if c, err := creds(ctx, host, "a"); err == nil {
			t.Errorf("credentials(%s) = %+v with a failing helper, want an error", host, c)
		}
	}

	if _, err := LoadAuthFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadAuthFile(missing) = %v", err)
	}
	for name, body := range map[string]string{
		"notjson.json":   `{"auths": `,
		"badb64.json":    `{"auths": {"h": {"auth": "!!!"}}}`,
		"nocolon.json":   `{"auths": {"h": {"auth": "` + b64("justuser") + `"}}}`,
		"wrongtype.json": `{"auths": []}`,
	} {
		p := writeFile(t, dir, name, body)
		if _, err := LoadAuthFile(p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("LoadAuthFile(%s) = %v, want invalid argument", name, err)
		}
		// a broken file is an error at lookup, not silent anonymity
		if _, err := CredentialsFromFiles(p)(ctx, "h", "a"); err == nil {
			t.Errorf("CredentialsFromFiles(%s) answered", name)
		}
	}
}

func TestDefaultAuthFiles(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "/explicit.json")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("DOCKER_CONFIG", "/dockercfg")
	want := []string{"/explicit.json", "/run/user/1/containers/auth.json", "/cfg/containers/auth.json", "/dockercfg/config.json"}
	got := DefaultAuthFiles()
	if len(got) != len(want) {
		t.Fatalf("DefaultAuthFiles() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("DefaultAuthFiles()[%d] = %s, want %s", i, got[i], want[i])
		}
	}
}
