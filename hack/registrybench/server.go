package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// registry is one server under test, started by this program and stopped by its PID.
type registry struct {
	name string // "berth" or "distribution"
	base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	logf *os.File
	done chan error
}

// freePort asks the kernel for a free loopback port. The eval's range 5000-5009 is avoided (the
// kernel's ephemeral range never hands those out, but a changed ip_local_port_range could).
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port < 5000 || port > 5009 {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: only 5000-5009 offered")
}

// startBerth runs `berth registry serve` with its default configuration, as the evaluation does.
func startBerth(ctx context.Context, name, bin, dir string) (*registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return start(ctx, name, addr, dir, bin, "registry", "serve", "--addr", addr, "--root", filepath.Join(dir, "root"))
}

// startDistribution runs the CNCF Distribution registry with the configuration the evaluation
// gives it: filesystem storage, in-memory blob descriptor cache, no access log, deletes on.
func startDistribution(ctx context.Context, bin, dir string) (*registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: registrybench-not-a-secret
`, filepath.Join(dir, "root"), addr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return start(ctx, "distribution", addr, dir, bin, "serve", cf)
}

func start(ctx context.Context, name, addr, dir, bin string, args ...string) (*registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C of the benchmark reaches the benchmark, which stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	r := &registry{name: name, base: "http://" + addr, cmd: cmd, logf: logf, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.base + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case err := <-r.done:
			r.done <- err
			return nil, fmt.Errorf("%s exited before answering /v2/ (%v): see %s", name, err, logf.Name())
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("%s did not answer %s/v2/ within 30s", name, r.base)
		}
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (r *registry) stop() {
	defer r.logf.Close()
	select {
	case err := <-r.done:
		r.done <- err
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// resetPeakRSS resets the process's VmHWM to its current RSS (proc(5), clear_refs value 5).
func (r *registry) resetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", r.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSS is the process's VmHWM in MiB since start or the last reset.
func (r *registry) peakRSS() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM of %s: %w", r.name, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", r.cmd.Process.Pid)
}

// cpuSeconds is the user+system CPU time the process has used (proc(5) stat fields 14 and 15).
func (r *registry) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
