package specjson

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

// semanticCase is one input with the spec it must decode to (into a zero spec, or into before), or
// the error it must give. Every case is also checked against encoding/json.
type semanticCase struct {
	name   string
	before string // a document decoded first into the same value
	in     string
	want   *specs.Spec
	err    string // substring of the error; "" for success
	syntax bool   // the error must be a *SyntaxError (else a *TypeError)
}

var semanticCases = []semanticCase{
	// Member names.
	{name: "exact name", in: `{"ociVersion":"1.3.0"}`, want: &specs.Spec{Version: "1.3.0"}},
	{name: "case-insensitive name", in: `{"OCIVERSION":"1","hostNAME":"h"}`, want: &specs.Spec{Version: "1", Hostname: "h"}},
	{name: "escaped name", in: `{"\u006fciVersion":"1"}`, want: &specs.Spec{Version: "1"}},
	{
		name: "Kelvin sign folds to k and long s to s",
		in:   `{"linux":{"resources":{"memory":{"\u212AernelTCP":5,"ſwap":6}}}}`,
		want: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{KernelTCP: ptr[int64](5), Swap: ptr[int64](6)}}}},
	},
	{name: "no fold for other look-alikes", in: `{"hostnamé":"x","hostnam":"y"}`, want: &specs.Spec{}},
	{name: "unknown members skipped", in: `{"x":[1,{"y":null},"z",true],"ociVersion":"1","X":{}}`, want: &specs.Spec{Version: "1"}},
	{name: "unknown members still syntax-checked", in: `{"x":[1,{"y":nul}],"ociVersion":"1"}`, err: "literal null", syntax: true},
	{name: "untagged field uses Go name", in: `{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":8,"minor":1,"weight":9}]}}}}`,
		want: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 1}, Weight: ptr[uint16](9)},
		}}}}}},
	{name: "embedded struct is not a member", in: `{"linux":{"resources":{"blockIO":{"throttleReadBpsDevice":[{"LinuxBlockIODevice":{"major":1},"rate":2}]}}}}`,
		want: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{Rate: 2}}}}}}},

	// Repeated members.
	{name: "later duplicate wins", in: `{"hostname":"a","hostname":"b"}`, want: &specs.Spec{Hostname: "b"}},
	{name: "duplicate via fold wins", in: `{"hostname":"a","HOSTNAME":"b"}`, want: &specs.Spec{Hostname: "b"}},
	{name: "pointer to struct merges", in: `{"root":{"path":"a"},"root":{"readonly":true}}`, want: &specs.Spec{Root: &specs.Root{Path: "a", Readonly: true}}},
	{name: "struct merges", in: `{"process":{"user":{"uid":1}},"process":{"user":{"gid":2}}}`, want: &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1, GID: 2}}}},
	{
		name: "slice elements merge into the previous array's",
		in:   `{"mounts":[{"destination":"/a","type":"x"},{"destination":"/b"}],"mounts":[{"destination":"/c"}]}`,
		want: &specs.Spec{Mounts: []specs.Mount{{Destination: "/c", Type: "x"}}},
	},
	{
		name: "shrunk slice's spare capacity is reused",
		in:   `{"process":{"args":["a","b"],"args":["c"],"args":["d",null]}}`,
		want: &specs.Spec{Process: &specs.Process{Args: []string{"d", "b"}}},
	},
	{name: "empty array is an empty slice", in: `{"process":{"args":["a"],"args":[]}}`, want: &specs.Spec{Process: &specs.Process{Args: []string{}}}},
	{name: "map entries accumulate", in: `{"annotations":{"a":"1"},"annotations":{"b":"2","a":"3"}}`, want: &specs.Spec{Annotations: map[string]string{"a": "3", "b": "2"}}},
	{name: "empty object is an empty map", in: `{"annotations":{}}`, want: &specs.Spec{Annotations: map[string]string{}}},
	{
		name: "map values decode from zero",
		in:   `{"linux":{"resources":{"rdma":{"x":{"hcaHandles":1},"x":{"hcaObjects":2}}}}}`,
		want: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"x": {HcaObjects: ptr[uint32](2)}}}}},
	},
	{name: "map keys are exact", in: `{"annotations":{"A":"1","a":"2"}}`, want: &specs.Spec{Annotations: map[string]string{"A": "1", "a": "2"}}},

	// null.
	{name: "top-level null leaves the value", before: `{"hostname":"h"}`, in: ` null `, want: &specs.Spec{Hostname: "h"}},
	{name: "null leaves a string", before: `{"hostname":"h"}`, in: `{"hostname":null}`, want: &specs.Spec{Hostname: "h"}},
	{name: "null clears a pointer", before: `{"root":{"path":"r"}}`, in: `{"root":null}`, want: &specs.Spec{}},
	{name: "null leaves a struct", in: `{"process":{"user":{"uid":5},"user":null}}`, want: &specs.Spec{Process: &specs.Process{User: specs.User{UID: 5}}}},
	{name: "null clears a slice", in: `{"mounts":[{}],"mounts":null}`, want: &specs.Spec{}},
	{name: "null clears a map", in: `{"annotations":{"a":"b"},"annotations":null}`, want: &specs.Spec{}},
	{name: "null map value is the zero value", in: `{"annotations":{"a":null}}`, want: &specs.Spec{Annotations: map[string]string{"a": ""}}},
	{name: "null number leaves it", in: `{"process":{"user":{"uid":7,"uid":null}}}`, want: &specs.Spec{Process: &specs.Process{User: specs.User{UID: 7}}}},
	{name: "null bool leaves it", in: `{"root":{"readonly":true,"readonly":null}}`, want: &specs.Spec{Root: &specs.Root{Readonly: true}}},
	{name: "null pointer to number", in: `{"process":{"oomScoreAdj":5,"oomScoreAdj":null}}`, want: &specs.Spec{Process: &specs.Process{}}},

	// Numbers.
	{name: "uint32 max", in: `{"process":{"user":{"uid":4294967295}}}`, want: &specs.Spec{Process: &specs.Process{User: specs.User{UID: 4294967295}}}},
	{name: "uint32 overflow", in: `{"process":{"user":{"uid":4294967296}}}`, err: "process.user.uid: number 4294967296 is out of range for uint32"},
	{name: "negative uint", in: `{"process":{"user":{"gid":-1}}}`, err: "process.user.gid: number -1 is out of range for uint32"},
	{name: "negative zero uint", in: `{"process":{"user":{"gid":-0}}}`, err: "number -0 is out of range"},
	{name: "negative zero int", in: `{"linux":{"devices":[{"major":-0}]}}`, want: &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{}}}}},
	{name: "fraction", in: `{"linux":{"resources":{"memory":{"limit":1.5}}}}`, err: "linux.resources.memory.limit: number 1.5 is not an integer"},
	{name: "whole fraction", in: `{"linux":{"resources":{"memory":{"limit":1.0}}}}`, err: "number 1.0 is not an integer"},
	{name: "exponent", in: `{"linux":{"resources":{"memory":{"limit":1e3}}}}`, err: "number 1e3 is not an integer"},
	{name: "int64 extremes", in: `{"linux":{"resources":{"memory":{"limit":9223372036854775807,"swap":-9223372036854775808}}}}`,
		want: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1<<63 - 1), Swap: ptr[int64](-1 << 63)}}}}},
	{name: "int64 overflow", in: `{"linux":{"resources":{"memory":{"swap":-9223372036854775809}}}}`, err: "out of range for int64"},
	{name: "uint64 max", in: `{"process":{"rlimits":[{"hard":18446744073709551615}]}}`, want: &specs.Spec{Process: &specs.Process{Rlimits: []specs.POSIXRlimit{{Hard: 1<<64 - 1}}}}},
	{name: "uint64 overflow", in: `{"process":{"rlimits":[{"hard":18446744073709551616}]}}`, err: "process.rlimits[0].hard: number 18446744073709551616 is out of range for uint64"},
	{name: "uint16 overflow", in: `{"linux":{"resources":{"blockIO":{"weight":65536}}}}`, err: "linux.resources.blockIO.weight: number 65536 is out of range for uint16"},
	{name: "int32 underflow", in: `{"process":{"scheduler":{"nice":-2147483649}}}`, err: "out of range for int32"},
	{name: "pointers are allocated", in: `{"linux":{"resources":{"memory":{"disableOOMKiller":false,"swappiness":0}}}}`,
		want: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(false), Swappiness: ptr[uint64](0)}}}}},
	{name: "FileMode decodes as uint32", in: `{"linux":{"devices":[{"fileMode":438}]}}`, want: &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{FileMode: ptr(os.FileMode(0o666))}}}}},
	{name: "named string types", in: `{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"]},"namespaces":[{"type":"pid"}]}}`,
		want: &specs.Spec{Linux: &specs.Linux{
			Seccomp:    &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64}},
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
		}}},

	// Strings.
	{name: "escapes", in: `{"hostname":"\"\\\/\b\f\n\r\t\u00e9\u20AC"}`, want: &specs.Spec{Hostname: "\"\\/\b\f\n\r\té€"}},
	{name: "surrogate pair", in: `{"hostname":"\ud83d\ude00"}`, want: &specs.Spec{Hostname: "😀"}},
	{name: "lone high surrogate", in: `{"hostname":"a\ud800b"}`, want: &specs.Spec{Hostname: "a\uFFFDb"}},
	{name: "high surrogate then BMP escape", in: `{"hostname":"\ud800\u0041"}`, want: &specs.Spec{Hostname: "\uFFFDA"}},
	{name: "two high surrogates then low", in: `{"hostname":"\ud800\ud800\udc00"}`, want: &specs.Spec{Hostname: "\uFFFD\U00010000"}},
	{name: "low surrogate first", in: `{"hostname":"\udc00\ud800"}`, want: &specs.Spec{Hostname: "\uFFFD\uFFFD"}},
	{name: "invalid UTF-8", in: "{\"hostname\":\"a\xffb\xc3\"}", want: &specs.Spec{Hostname: "a\uFFFDb\uFFFD"}},
	{name: "UTF-8 encoded surrogate", in: "{\"hostname\":\"\xed\xa0\x80\"}", want: &specs.Spec{Hostname: "\uFFFD\uFFFD\uFFFD"}},
	{name: "valid UTF-8 kept", in: `{"hostname":"grüß 😀"}`, want: &specs.Spec{Hostname: "grüß 😀"}},
	{name: "escaped NUL", in: `{"hostname":"a\u0000b"}`, want: &specs.Spec{Hostname: "a\x00b"}},
	{name: "raw control character", in: "{\"hostname\":\"a\tb\"}", err: "control character", syntax: true},
	{name: "bad escape", in: `{"hostname":"\x"}`, err: `invalid escape \x`, syntax: true},
	{name: "short unicode escape", in: `{"hostname":"\u12"}`, err: `\u escape`, syntax: true},

	// interface{} goes through encoding/json.
	{name: "interface member", in: `{"windows":{"credentialSpec":{"a":[1,"x",null,true,{"b":2.5}]}}}`,
		want: &specs.Spec{Windows: &specs.Windows{CredentialSpec: map[string]any{"a": []any{1.0, "x", nil, true, map[string]any{"b": 2.5}}}}}},
	{name: "interface null", before: `{"windows":{"credentialSpec":1}}`, in: `{"windows":{"credentialSpec":null}}`, want: &specs.Spec{Windows: &specs.Windows{}}},

	// Whole input.
	{name: "whitespace around", in: " \t\r\n{}\n ", want: &specs.Spec{}},
	{name: "empty input", in: ``, err: "unexpected end of input", syntax: true},
	{name: "only whitespace", in: "  \n", err: "unexpected end of input", syntax: true},
	{name: "trailing data", in: `{} x`, err: `after the top-level value`, syntax: true},
	{name: "two values", in: `{}{}`, err: `after the top-level value`, syntax: true},
	{name: "trailing comma", in: `{"hostname":"a",}`, err: "member name", syntax: true},
	{name: "trailing comma in array", in: `{"mounts":[{},]}`, err: "expected a value", syntax: true},
	{name: "unterminated", in: `{"hostname":"a"`, err: "unexpected end of input", syntax: true},
	{name: "leading zero", in: `{"x":01}`, err: "found '1'", syntax: true},
	{name: "BOM", in: "\ufeff{}", syntax: true, err: "expected a value"},
	{name: "syntax error wins over an earlier type error", in: `{"process":{"user":{"uid":"0"}}, x}`, err: "member name", syntax: true},
	{name: "syntax error line", in: "{\n  \"hostname\": \"a\",\n  \"root\": tru\n}", err: "line 3 column 14", syntax: true},

	// Type errors name the member.
	{name: "string for number", in: `{"process":{"user":{"uid":"0"}}}`, err: "process.user.uid: expected uint32, got a JSON string"},
	{name: "number for string", in: `{"mounts":[{},{"options":["ro",1]}]}`, err: "mounts[1].options[1]: expected string, got a JSON number"},
	{name: "map value", in: `{"linux":{"sysctl":{"net.ipv4.ip_forward":1}}}`, err: `linux.sysctl["net.ipv4.ip_forward"]: expected string, got a JSON number`},
	{name: "array for object", in: `{"linux":[]}`, err: "linux: expected object, got a JSON array"},
	{name: "object for array", in: `{"mounts":{}}`, err: "mounts: expected array, got a JSON object"},
	{name: "bool for string", in: `{"hostname":true}`, err: "hostname: expected string, got a JSON boolean"},
	{name: "string for bool", in: `{"root":{"readonly":"true"}}`, err: "root.readonly: expected bool, got a JSON string"},
	{name: "wrong root", in: `[]`, err: "expected object, got a JSON array"},
	{name: "string for map", in: `{"annotations":"a=b"}`, err: "annotations: expected object, got a JSON string"},
	{name: "embedded member path", in: `{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":"8"}]}}}}`, err: "linux.resources.blockIO.weightDevice[0].major: expected int64"},
}

func TestSemantics(t *testing.T) {
	for _, c := range semanticCases {
		t.Run(c.name, func(t *testing.T) {
			var got specs.Spec
			if c.before != "" {
				if err := Unmarshal([]byte(c.before), &got); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			err := Unmarshal([]byte(c.in), &got)
			if c.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if c.want != nil {
					if d := firstDiff(reflect.ValueOf(*c.want), reflect.ValueOf(got), "spec"); d != "" {
						t.Fatalf("decoded value differs from the expected one at %s", d)
					}
				}
			} else {
				if err == nil {
					t.Fatalf("no error, want one containing %q", c.err)
				}
				if !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %q does not contain %q", err, c.err)
				}
				var se *SyntaxError
				var te *TypeError
				if c.syntax && !errors.As(err, &se) {
					t.Errorf("error %v is %T, want *SyntaxError", err, err)
				}
				if !c.syntax && !errors.As(err, &te) {
					t.Errorf("error %v is %T, want *TypeError", err, err)
				}
			}
			// And encoding/json agrees, starting from the same value.
			before := []byte(c.before)
			if c.before == "" {
				before = nil
			}
			checkRoot(t, "Spec", []byte(c.in), before, Unmarshal)
		})
	}
}

func TestFileMode(t *testing.T) {
	var s specs.Spec
	if err := Unmarshal([]byte(`{"linux":{"devices":[{"fileMode":438}]}}`), &s); err != nil {
		t.Fatal(err)
	}
	if m := s.Linux.Devices[0].FileMode; m == nil || *m != 0o666 {
		t.Fatalf("fileMode = %v, want 0666", m)
	}
}

func TestNilTarget(t *testing.T) {
	if err := Unmarshal([]byte(`{}`), nil); err == nil {
		t.Fatal("no error for a nil *specs.Spec")
	}
}

func TestProcessAndState(t *testing.T) {
	var p specs.Process
	if err := UnmarshalProcess([]byte(`{"args":["sh"],"user":{"uid":1,"umask":18},"cwd":"/"}`), &p); err != nil {
		t.Fatal(err)
	}
	want := specs.Process{Args: []string{"sh"}, User: specs.User{UID: 1, Umask: ptr[uint32](18)}, Cwd: "/"}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("process = %+v, want %+v", p, want)
	}
	err := UnmarshalProcess([]byte(`{"user":{"uid":-1}}`), &p)
	if err == nil || err.Error() != "user.uid: number -1 is out of range for uint32" {
		t.Fatalf("error = %v", err)
	}

	var s specs.State
	if err := UnmarshalState([]byte(`{"ociVersion":"1.3.0","id":"c","status":"created","pid":42,"bundle":"/b"}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Status != specs.StateCreated || s.Pid != 42 || s.Bundle != "/b" {
		t.Fatalf("state = %+v", s)
	}
}

// TestDepthLimit checks the nesting limit is encoding/json's, to the level.
func TestDepthLimit(t *testing.T) {
	for _, depth := range []int{maxDepth - 1, maxDepth} { // plus the outer object
		in := `{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
		checkRoot(t, "Spec", []byte(in), nil, Unmarshal)
		err := Unmarshal([]byte(in), new(specs.Spec))
		if (err != nil) != (depth == maxDepth) {
			t.Errorf("depth %d+1: error %v", depth, err)
		}
	}
}

func TestErrorFields(t *testing.T) {
	in := "{\n\"process\": {\"user\": {\"uid\": \"0\"}}}"
	var te *TypeError
	if err := Unmarshal([]byte(in), new(specs.Spec)); !errors.As(err, &te) {
		t.Fatalf("error %v is not a *TypeError", err)
	}
	want := TypeError{Field: "process.user.uid", Expected: "uint32", Got: "a JSON string", Offset: 30, Line: 2}
	if *te != want {
		t.Fatalf("TypeError = %+v, want %+v", *te, want)
	}

	var se *SyntaxError
	if err := Unmarshal([]byte("{\n  \"a\": x}"), new(specs.Spec)); !errors.As(err, &se) {
		t.Fatalf("error %v is not a *SyntaxError", err)
	}
	if se.Offset != 9 || se.Line != 2 || se.Column != 8 {
		t.Fatalf("SyntaxError = %+v, want offset 9, line 2, column 8", *se)
	}
}
