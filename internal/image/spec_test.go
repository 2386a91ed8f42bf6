package image

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSpecFromConfig(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("app:x:10:20::/home/app:/bin/sh\n"), 0o644)
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	cfg.Config = ocispec.ImageConfig{
		Entrypoint: []string{"/bin/server"}, Cmd: []string{"--port", "80"}, Env: []string{"A=1"},
		WorkingDir: "/srv", User: "app", Labels: map[string]string{"l": "v"}, StopSignal: "SIGQUIT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
	}
	s, err := Spec(cfg, root, SpecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, []string{"/bin/server", "--port", "80"}) {
		t.Errorf("args %v", s.Process.Args)
	}
	if !slices.Equal(s.Process.Env, []string{defaultPath, "A=1", "HOME=/home/app"}) {
		t.Errorf("env %v", s.Process.Env)
	}
	if s.Process.Cwd != "/srv" || s.Process.User.UID != 10 || s.Process.User.GID != 20 || s.Process.Terminal {
		t.Errorf("process %+v", s.Process)
	}
	if s.Root.Path != "rootfs" || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
	for k, v := range map[string]string{"l": "v", "org.opencontainers.image.stopSignal": "SIGQUIT",
		"org.opencontainers.image.exposedPorts": "53/udp,80/tcp", "org.opencontainers.image.architecture": "amd64"} {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	s, err = Spec(cfg, root, SpecOptions{Args: []string{"--debug"}})
	if err != nil || !slices.Equal(s.Process.Args, []string{"/bin/server", "--debug"}) {
		t.Errorf("args replaced: %v, %v", s.Process.Args, err)
	}
	s, err = Spec(cfg, root, SpecOptions{Entrypoint: []string{"/bin/sh"}})
	if err != nil || !slices.Equal(s.Process.Args, []string{"/bin/sh"}) {
		t.Errorf("entrypoint replaced: %v, %v", s.Process.Args, err)
	}
	cfg.Config.Entrypoint, cfg.Config.Cmd = nil, nil
	if _, err := Spec(cfg, root, SpecOptions{}); err == nil {
		t.Error("no command: no error")
	}
	cfg.Config.Cmd, cfg.Config.WorkingDir = []string{"x"}, "relative"
	if _, err := Spec(cfg, root, SpecOptions{}); err == nil {
		t.Error("relative WorkingDir: no error")
	}
}
