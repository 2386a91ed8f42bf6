package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is the registry's configuration: the YAML file of `berth registry serve --config`, whose
// keys are the json names below. Unknown keys are an error, so that a typo does not silently turn
// an option off.
type Config struct {
	// Addr is HOST:PORT to listen on.
	Addr string `json:"addr"`
	// Root is the storage directory, created on first use.
	Root string `json:"root"`
	// TLS serves HTTPS when set.
	TLS *TLSConfig `json:"tls,omitempty"`
	// Auth chooses at most one authentication scheme; without one, anyone may pull and push.
	Auth AuthConfig `json:"auth"`
	// ReadOnly refuses every write with UNSUPPORTED.
	ReadOnly bool `json:"readOnly"`
	// Delete controls the DELETE endpoints.
	Delete DeleteConfig `json:"delete"`
	// MaxManifestBytes bounds a manifest push (413 above it). Default 4 MiB, which the spec asks
	// registries to accept at least.
	MaxManifestBytes int64 `json:"maxManifestBytes"`
	// MountWithoutFrom lets `POST ?mount=<digest>` without `from` mount a blob held by any
	// repository (automatic content discovery). Default true; never with token auth, whose
	// scopes are per repository.
	MountWithoutFrom *bool `json:"mountWithoutFrom,omitempty"`
	// GC configures garbage collection (`berth registry gc`, and the server's own if Interval is set).
	GC GCConfig `json:"gc"`
	// Metrics configures Prometheus metrics at /metrics.
	Metrics MetricsConfig `json:"metrics"`
	// Log configures logging.
	Log LogConfig `json:"log"`
}

// TLSConfig names the server's certificate and key (PEM), and optionally a CA bundle whose
// client certificates are required.
type TLSConfig struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
	ClientCAs   string `json:"clientCAs,omitempty"`
}

// AuthConfig holds the authentication schemes.
type AuthConfig struct {
	Htpasswd *HtpasswdConfig `json:"htpasswd,omitempty"`
	Token    *TokenConfig    `json:"token,omitempty"`
}

// HtpasswdConfig is HTTP basic authentication against an htpasswd file of bcrypt hashes
// (`htpasswd -B`); every user may pull and push everything.
type HtpasswdConfig struct {
	Path  string `json:"path"`
	Realm string `json:"realm"`
}

// TokenConfig is the Docker bearer token flow: clients get a JWT from the token server at Realm
// for Service, and the registry checks its signature against PublicKeys (a PEM file of public keys
// or certificates), its issuer, audience, lifetime and the access it grants.
type TokenConfig struct {
	Realm      string `json:"realm"`
	Service    string `json:"service"`
	Issuer     string `json:"issuer"`
	PublicKeys string `json:"publicKeys"`
}

// DeleteConfig controls deletes. Deletes by digest are on unless Disabled; delete by tag is off
// unless Tags (it answers UNSUPPORTED), because a tag deleted by mistake cannot be recovered from
// the manifest alone.
type DeleteConfig struct {
	Disabled bool `json:"disabled"`
	Tags     bool `json:"tags"`
}

// GCConfig configures garbage collection.
type GCConfig struct {
	// Grace keeps unreferenced blobs younger than this (default 1h): pushes in progress upload
	// their blobs before the manifest that references them.
	Grace *Duration `json:"grace,omitempty"`
	// UploadTTL removes uploads idle for this long (default 24h). The server purges them hourly.
	UploadTTL *Duration `json:"uploadTTL,omitempty"`
	// Interval runs a collection inside the server this often (default 0: never; run `berth
	// registry gc` from cron instead, which is safe while the server runs).
	Interval Duration `json:"interval"`
}

// MetricsConfig configures /metrics.
type MetricsConfig struct {
	Disabled bool `json:"disabled"`
}

// LogConfig configures logging to stderr.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `json:"level"`
	// Format is json (default) or text.
	Format string `json:"format"`
	// AccessLog logs one line per request (default true). Lines are buffered and written at most
	// every 100 ms, so that logging costs no system call per request.
	AccessLog *bool `json:"accessLog,omitempty"`
}

// Duration is a time.Duration written as "90s", "1h".
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"1h\" or \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Defaults.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultGCGrace          = time.Hour
	DefaultUploadTTL        = 24 * time.Hour
)

// LoadConfig reads a YAML configuration file.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks the configuration for mistakes that would otherwise surface at the first request.
func (c *Config) Validate() error {
	var errs []error
	if c.Root == "" {
		errs = append(errs, errors.New("root: the storage directory is not set"))
	}
	if c.MaxManifestBytes < 0 {
		errs = append(errs, errors.New("maxManifestBytes: negative"))
	}
	if c.Auth.Htpasswd != nil && c.Auth.Token != nil {
		errs = append(errs, errors.New("auth: choose htpasswd or token, not both"))
	}
	if h := c.Auth.Htpasswd; h != nil && h.Path == "" {
		errs = append(errs, errors.New("auth.htpasswd.path: not set"))
	}
	if t := c.Auth.Token; t != nil {
		if t.Realm == "" || t.Service == "" || t.Issuer == "" || t.PublicKeys == "" {
			errs = append(errs, errors.New("auth.token: realm, service, issuer and publicKeys are all required"))
		}
	}
	if t := c.TLS; t != nil && (t.Certificate == "" || t.Key == "") {
		errs = append(errs, errors.New("tls: certificate and key are both required"))
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not json or text", c.Log.Format))
	}
	return errors.Join(errs...)
}

func (c *Config) maxManifest() int64 {
	if c.MaxManifestBytes == 0 {
		return DefaultMaxManifestBytes
	}
	return c.MaxManifestBytes
}

func (c *Config) grace() time.Duration {
	if c.GC.Grace == nil {
		return DefaultGCGrace
	}
	return time.Duration(*c.GC.Grace)
}

func (c *Config) uploadTTL() time.Duration {
	if c.GC.UploadTTL == nil {
		return DefaultUploadTTL
	}
	return time.Duration(*c.GC.UploadTTL)
}

// GCOptions returns the collection options the configuration implies.
func (c *Config) GCOptions() (grace, uploadTTL time.Duration) { return c.grace(), c.uploadTTL() }

func (c *Config) accessLog() bool { return c.Log.AccessLog == nil || *c.Log.AccessLog }

func (c *Config) mountWithoutFrom() bool {
	return c.Auth.Token == nil && (c.MountWithoutFrom == nil || *c.MountWithoutFrom)
}
