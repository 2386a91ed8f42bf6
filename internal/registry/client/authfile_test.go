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

func TestAuthFiles(t *testing.T) {
	dir := t.TempDir()
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
	}, "credHelpers": {"gcr.example": "gcloud"}}`)

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
		{"gcr.example", "a", Credential{}}, // helpers are not run: anonymous, with a warning
		{"unknown.example", "a", Credential{}},
	} {
		got, err := creds(ctx, c.host, c.repo)
		if err != nil || got != c.want {
			t.Errorf("credentials(%s, %s) = %+v, %v; want %+v", c.host, c.repo, got, err, c.want)
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
