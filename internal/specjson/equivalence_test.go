package specjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The contract of this package is "the same value as encoding/json", so most tests decode with both
// and compare. The configs in testdata/ are realistic documents: the output of `runc spec` and
// `crun spec`, a CRI-style config with a full seccomp profile, one that sets every Linux field,
// one for the other platforms, an exec process.json and a state.

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// configs returns the testdata documents by name.
func configs(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no testdata configs: %v", err)
	}
	m := map[string][]byte{}
	for _, n := range names {
		m[filepath.Base(n)] = readTestdata(t, filepath.Base(n))
	}
	return m
}

// checkEquivalent decodes data into each root type with both decoders, into zero values and into
// values already holding another document (which exercises the merging rules), and fails on any
// difference in outcome: both must accept with deeply equal results, or both must reject with the
// same class of error. encoding/json goes on after a type error and returns what it filled in, so
// for type errors only the error class is compared.
func checkEquivalent(t *testing.T, data, prefill []byte) {
	t.Helper()
	checkRoot(t, "Spec", data, nil, Unmarshal)
	checkRoot(t, "Spec over prefilled", data, prefill, Unmarshal)
	checkRoot(t, "Process", data, nil, UnmarshalProcess)
	checkRoot(t, "State", data, nil, UnmarshalState)
}

func checkRoot[T any](t *testing.T, what string, data, prefill []byte, ours func([]byte, *T) error) {
	t.Helper()
	var want, got T
	if prefill != nil {
		if json.Unmarshal(prefill, &want) != nil || json.Unmarshal(prefill, &got) != nil {
			t.Fatalf("%s: prefill document does not decode", what)
		}
	}
	jerr := json.Unmarshal(data, &want)
	oerr := ours(data, &got)

	var jsyn *json.SyntaxError
	var osyn *SyntaxError
	var otype *TypeError
	switch {
	case jerr == nil:
		if oerr != nil {
			t.Fatalf("%s: encoding/json accepts the input, specjson says: %v", what, oerr)
		}
		if d := firstDiff(reflect.ValueOf(want), reflect.ValueOf(got), ""); d != "" {
			t.Fatalf("%s: decoded values differ at %s", what, d)
		}
	case errors.As(jerr, &jsyn):
		if !errors.As(oerr, &osyn) {
			t.Fatalf("%s: encoding/json finds a syntax error (%v), specjson says: %v", what, jerr, oerr)
		}
	default:
		if !errors.As(oerr, &otype) {
			t.Fatalf("%s: encoding/json finds a type error (%v), specjson says: %v", what, jerr, oerr)
		}
	}
}

// firstDiff returns the path to the first difference between a and b (as reflect.DeepEqual
// judges them), with both values, or "" if there is none.
func firstDiff(a, b reflect.Value, path string) string {
	if !a.IsValid() || !b.IsValid() {
		if a.IsValid() != b.IsValid() {
			return fmt.Sprintf("%s: validity %v vs %v", path, a.IsValid(), b.IsValid())
		}
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %v vs %v", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: nil %v (encoding/json) vs nil %v (specjson)", path, a.IsNil(), b.IsNil())
			}
			return ""
		}
		return firstDiff(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := firstDiff(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v (encoding/json) vs nil %v (specjson)", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d (encoding/json) vs %d (specjson)", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := firstDiff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v (encoding/json) vs nil %v (specjson)", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d entries (encoding/json) vs %d (specjson)", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			if d := firstDiff(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%q]", path, k)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return fmt.Sprintf("%s: %#v (encoding/json) vs %#v (specjson)", path, a.Interface(), b.Interface())
	}
	return ""
}

func TestEquivalenceConfigs(t *testing.T) {
	cs := configs(t)
	for name, data := range cs {
		t.Run(name, func(t *testing.T) {
			checkEquivalent(t, data, cs["full-linux.json"])
			// Each must also decode without error into its own root.
			var err error
			switch name {
			case "exec-process.json":
				err = UnmarshalProcess(data, new(specs.Process))
			case "state.json":
				err = UnmarshalState(data, new(specs.State))
			default:
				err = Unmarshal(data, new(specs.Spec))
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConfigsCoverEveryField guards the equivalence tests themselves: every field of every struct
// that the decoders handle must be set (non-zero) in at least one testdata config, so that every
// generated decoding path is compared against encoding/json on realistic input.
func TestConfigsCoverEveryField(t *testing.T) {
	set := map[string]bool{}
	for name, data := range configs(t) {
		var v any
		switch name {
		case "exec-process.json":
			v = new(specs.Process)
		case "state.json":
			v = new(specs.State)
		default:
			v = new(specs.Spec)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		markSet(reflect.ValueOf(v), set)
	}
	all := map[string]bool{}
	listFields(reflect.TypeFor[specs.Spec](), all)
	listFields(reflect.TypeFor[specs.State](), all)
	var missing []string
	for f := range all {
		if !set[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Errorf("fields no testdata config sets: %s", strings.Join(missing, ", "))
	}
}

func markSet(v reflect.Value, set map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			markSet(v.Elem(), set)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Field(i).IsZero() {
				set[v.Type().String()+"."+v.Type().Field(i).Name] = true
			}
			markSet(v.Field(i), set)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			markSet(v.Index(i), set)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			markSet(it.Value(), set)
		}
	}
}

func listFields(t reflect.Type, all map[string]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		listFields(t.Elem(), all)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			key := t.String() + "." + t.Field(i).Name
			if all[key] {
				return // seen this type
			}
			all[key] = true
			listFields(t.Field(i).Type, all)
		}
	}
}

// FuzzEquivalence feeds arbitrary bytes to both decoders. Its seeds are the testdata configs and
// the inputs of the semantics table; what the fuzzer found is in testdata/fuzz/FuzzEquivalence.
func FuzzEquivalence(f *testing.F) {
	cs := configs(f)
	for _, data := range cs {
		f.Add(data)
	}
	for _, c := range semanticCases {
		f.Add([]byte(c.in))
	}
	// Small, so that the fuzzer spends its time on the input, but with something in every kind
	// of container for repeated members to merge into.
	prefill := []byte(`{"process":{"args":["a","b","c"],"user":{"uid":1,"umask":2},"rlimits":[{"type":"t","hard":1}]},` +
		`"mounts":[{"destination":"/x","type":"t","options":["o"],"uidMappings":[{"size":1}]},{"destination":"/y"}],` +
		`"annotations":{"a":"b"},"linux":{"namespaces":[{"type":"pid"}],"sysctl":{"k":"v"},` +
		`"resources":{"memory":{"limit":1},"rdma":{"m":{"hcaHandles":1}}},"seccomp":{"syscalls":[{"names":["read"],"args":[{"index":1}]}]}}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkEquivalent(t, data, prefill)
	})
}
