package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-dev/berth/internal/netns"
)

func TestErrorCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		code uint
	}{
		{fmt.Errorf("open: %w", netns.ErrNotExist), types.ErrUnknownContainer},
		{fmt.Errorf("x: %w", ErrUnknownContainer), 3},
		{fmt.Errorf("x: %w", ErrDecode), 6},
		{fmt.Errorf("x: %w", ErrInvalidConfig), 7},
		{fmt.Errorf("x: %w", ErrUnsupportedField), 2},
		{fmt.Errorf("x: %w", ErrEnv), 4},
		{fmt.Errorf("x: %w", ErrIO), 5},
		{fmt.Errorf("lock: %w", ErrTryAgain), 11},
		{fmt.Errorf("x: %w", ErrNotAvailable), 50},
		{fmt.Errorf("x: %w", ErrExists), CodeExists},
		{fmt.Errorf("x: %w", ErrCheck), CodeCheckFailed},
		{errors.New("anything else"), types.ErrInternal},
		{types.NewError(42, "from a delegated plugin", ""), 42},
	} {
		te := ToTypesError(c.err)
		if te.Code != c.code || te.Msg == "" {
			t.Errorf("%v: code %d msg %q, want code %d", c.err, te.Code, te.Msg, c.code)
		}
	}
	if ToTypesError(nil) != nil {
		t.Error("nil error mapped to a structure")
	}
}

func TestLogToFileAtLevel(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cni.log")
	t.Setenv("BERTH_CNI_LOG", f)
	t.Setenv("BERTH_CNI_LOG_LEVEL", "info")
	ctx := withLog(context.Background(), "bridge")
	Logger(ctx).Debug("hidden")
	Logger(ctx).Info("shown", "k", "v")
	// a plugin's configuration lowers the level
	configureLog(ctx, "", "debug")
	Logger(ctx).Debug("now shown")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "hidden") || !strings.Contains(s, "msg=shown") || !strings.Contains(s, "k=v") || !strings.Contains(s, "now shown") || !strings.Contains(s, "plugin=bridge") {
		t.Errorf("log file:\n%s", s)
	}
}

func TestPrintResultConverts(t *testing.T) {
	res := &types100.Result{CNIVersion: "1.1.0",
		Interfaces: []*types100.Interface{{Name: "eth0", Sandbox: "/run/netns/x"}},
		IPs:        []*types100.IPConfig{{Interface: types100.Int(0), Address: net.IPNet{IP: net.ParseIP("10.0.0.2").To4(), Mask: net.CIDRMask(24, 32)}}},
	}
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		var out bytes.Buffer
		if err := PrintResult(res, []byte(`{"cniVersion":"`+v+`"}`), &out); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		var m map[string]interface{}
		json.Unmarshal(out.Bytes(), &m)
		if m["cniVersion"] != v {
			t.Errorf("printed cniVersion %v for a %s request", m["cniVersion"], v)
		}
		ips, _ := m["ips"].([]interface{})
		if len(ips) != 1 {
			t.Errorf("%s: ips %v", v, m["ips"])
		}
	}
}

func TestParseArgs(t *testing.T) {
	m, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5")
	if err != nil || m["IP"] != "10.0.0.5" || m["K8S_POD_NAME"] != "web" {
		t.Errorf("%v %v", m, err)
	}
	if _, err := ParseArgs("novalue"); !errors.Is(err, ErrEnv) {
		t.Errorf("malformed CNI_ARGS: %v", err)
	}
}
