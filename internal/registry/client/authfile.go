package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// AuthFile is the credential part of containers-auth.json(5) (podman, skopeo, buildah) and of
// Docker's config.json: both keep {"auths": {KEY: {"auth": base64("user:password")}}}.
type AuthFile struct {
	Auths map[string]AuthEntry `json:"auths"`
	// CredHelpers (per host) and CredsStore (every host) name external credential helpers,
	// docker-credential-NAME programs on $PATH (see HelperCredential), asked before "auths".
	CredHelpers map[string]string `json:"credHelpers,omitempty"`
	CredsStore  string            `json:"credsStore,omitempty"`
}

// AuthEntry is one entry of "auths".
type AuthEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// LoadAuthFile reads an auth file. A missing file is an error wrapping fs.ErrNotExist.
func LoadAuthFile(path string) (*AuthFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	var f AuthFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("auth file %s: %w: %w", path, err, errdefs.ErrInvalidArgument)
	}
	for k, e := range f.Auths {
		if _, err := e.credential(); err != nil {
			return nil, fmt.Errorf("auth file %s: auths[%q]: %w", path, k, err)
		}
	}
	return &f, nil
}

func (e AuthEntry) credential() (Credential, error) {
	c := Credential{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return c, fmt.Errorf("auth: not base64: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return c, fmt.Errorf("auth: not user:password once decoded: %w", errdefs.ErrInvalidArgument)
		}
		c.Username, c.Password = user, pass
	}
	return c, nil
}

// normalizeKey turns an "auths" key into HOST[/PATH]: Docker writes URLs
// ("https://index.docker.io/v1/"), whose path is not a namespace; containers-auth.json writes
// HOST or HOST/NAMESPACE.
func normalizeKey(k string) string {
	for _, scheme := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(k, scheme); ok {
			host, _, _ := strings.Cut(rest, "/")
			return host
		}
	}
	return strings.TrimSuffix(k, "/")
}

// Lookup returns the credentials for repository on host: the entry for the longest
// HOST/NAMESPACE prefix of HOST/REPOSITORY, or for HOST. ok is false when there is none.
func (f *AuthFile) Lookup(host, repository string) (cred Credential, ok bool) {
	best := -1
	full := host + "/" + repository
	for k, e := range f.Auths {
		n := normalizeKey(k)
		if n != host && !(strings.HasPrefix(n, host+"/") && (full == n || strings.HasPrefix(full, n+"/"))) {
			continue
		}
		if len(n) > best {
			if c, err := e.credential(); err == nil {
				cred, best = c, len(n)
			}
		}
	}
	return cred, best >= 0
}

// helperFor reports the credential helper the file configures for host, if any.
func (f *AuthFile) helperFor(host string) string {
	if h := f.CredHelpers[host]; h != "" {
		return h
	}
	return f.CredsStore
}

// DefaultAuthFiles lists the auth files podman and skopeo read, in their order:
// $REGISTRY_AUTH_FILE; $XDG_RUNTIME_DIR/containers/auth.json; $XDG_CONFIG_HOME/containers/auth.json
// (~/.config); then Docker's $DOCKER_CONFIG/config.json (~/.docker).
func DefaultAuthFiles() []string {
	var out []string
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		out = append(out, p)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		out = append(out, filepath.Join(d, "containers", "auth.json"))
	}
	home, _ := os.UserHomeDir()
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		out = append(out, filepath.Join(d, "containers", "auth.json"))
	} else if home != "" {
		out = append(out, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		out = append(out, filepath.Join(d, "config.json"))
	} else if home != "" {
		out = append(out, filepath.Join(home, ".docker", "config.json"))
	}
	return out
}

// CredentialsFromFiles returns a CredentialFunc that answers from the first of the auth files
// with credentials for the host: its credential helper for the host, if it names one and the
// helper has some, else its "auths" entry. Missing files are skipped, the files are read once (on
// first use). A file that cannot be parsed, or a helper that fails, is an error at every lookup,
// not silently anonymous access.
func CredentialsFromFiles(paths ...string) CredentialFunc {
	var once sync.Once
	var files []*AuthFile
	var loadErr error
	return func(ctx context.Context, host, repository string) (Credential, error) {
		once.Do(func() {
			for _, p := range paths {
				f, err := LoadAuthFile(p)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					loadErr = err
					return
				}
				files = append(files, f)
			}
		})
		if loadErr != nil {
			return Credential{}, loadErr
		}
		for _, f := range files {
			if h := f.helperFor(host); h != "" {
				c, ok, err := HelperCredential(ctx, h, host)
				if err != nil {
					return Credential{}, err
				}
				if ok {
					return c, nil
				}
			}
			if c, ok := f.Lookup(host, repository); ok {
				return c, nil
			}
		}
		return Credential{}, nil
	}
}

// helperTimeout bounds a credential helper that hangs (one waiting for a desktop prompt, say).
const helperTimeout = 30 * time.Second

// HelperCredential asks the credential helper docker-credential-NAME for host's credentials, as
// Docker and podman do: "get" with the server on stdin, {"Username", "Secret"} on stdout; a
// Username of "<token>" makes Secret an identity token. ok is false when the helper has none for
// host (it says "credentials not found").
func HelperCredential(ctx context.Context, name, host string) (cred Credential, ok bool, err error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return Credential{}, false, fmt.Errorf("credential helper %q: not a helper name: %w", name, errdefs.ErrInvalidArgument)
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	prog := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(host)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return Credential{}, false, nil
		}
		if errors.Is(err, exec.ErrNotFound) {
			return Credential{}, false, fmt.Errorf("credential helper for %s: %s is not on $PATH: %w", host, prog, errdefs.ErrUnavailable)
		}
		return Credential{}, false, fmt.Errorf("credential helper %s for %s: %w: %s", prog, host, err, msg)
	}
	var out struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return Credential{}, false, fmt.Errorf("credential helper %s for %s: output is not {\"Username\", \"Secret\"}: %w", prog, host, err)
	}
	if out.Username == "<token>" {
		return Credential{IdentityToken: out.Secret}, true, nil
	}
	return Credential{Username: out.Username, Password: out.Secret}, true, nil
}
