package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestGeneratedFileUpToDate fails when zz_generated.go is not what the generator makes from the
// runtime-spec types in go.mod, e.g. after a runtime-spec update or a generator change.
func TestGeneratedFileUpToDate(t *testing.T) {
	want, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < min(len(gl), len(wl)); i++ {
		if gl[i] != wl[i] {
			t.Fatalf("zz_generated.go is stale (run go generate ./internal/specjson); line %d is\n\t%s\nand should be\n\t%s", i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("zz_generated.go is stale (run go generate ./internal/specjson); it has %d lines, should have %d", len(gl), len(wl))
}

// TestJSONFieldsEmbedded checks the promoted fields of an embedded struct come in field order
// before the embedding struct's own later fields.
func TestJSONFieldsEmbedded(t *testing.T) {
	fields, err := jsonFields(reflect.TypeFor[specs.LinuxWeightDevice]())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.name+"="+strings.Join(f.goPath, "."))
	}
	want := "major=LinuxBlockIODevice.Major minor=LinuxBlockIODevice.Minor weight=Weight leafWeight=LeafWeight"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("fields = %s, want %s", got, want)
	}
}

// TestJSONFieldsRules covers the encoding/json naming rules that runtime-spec does not use today.
func TestJSONFieldsRules(t *testing.T) {
	type Inner struct {
		A string `json:"a"`
		B string
		C string `json:"c"`
	}
	type outer struct {
		Inner
		B       string // shallower than Inner.B: wins
		C       string // "C", not Inner.C's "c": both are members
		Skipped string `json:"-"`
		//lint:ignore SA5008 "-," is how encoding/json spells the member name "-"
		Dash string `json:"-,"`
		//lint:ignore SA5008 an invalid name makes encoding/json use the Go name
		Bad    string `json:"a\"b"`
		hidden string
		Opt    string `json:",omitempty"`
	}
	_ = outer{}.hidden
	fields, err := jsonFields(reflect.TypeFor[outer]())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.name+"="+strings.Join(f.goPath, "."))
	}
	want := "a=Inner.A c=Inner.C B=B C=C -=Dash Bad=Bad Opt=Opt"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("fields = %s, want %s", got, want)
	}

	type tie1 struct{ X string }
	type tie2 struct{ X string }
	type ties struct {
		tie1
		tie2
		Y int
	}
	fields, err = jsonFields(reflect.TypeFor[ties]())
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) != 1 || fields[0].name != "Y" {
		t.Fatalf("ambiguous X should be dropped: %+v", fields)
	}

	type withString struct {
		N int `json:"n,string"`
	}
	if _, err := jsonFields(reflect.TypeFor[withString]()); err == nil {
		t.Fatal("the ,string option was accepted")
	}
}

// TestJSONFieldsMatchEncodingJSON compares the member names of every struct the generator emits a
// decoder for with the keys encoding/json writes for a value with every field set.
func TestJSONFieldsMatchEncodingJSON(t *testing.T) {
	g := &generator{imports: map[string]string{}, funcs: map[reflect.Type]string{}, owners: map[string]reflect.Type{}}
	for _, root := range roots {
		if _, err := g.structDecoder(root.typ); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(g.queue); i++ {
		if err := g.emitStruct(new(bytes.Buffer), g.queue[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(g.queue) < 60 {
		t.Fatalf("only %d struct types reached", len(g.queue))
	}
	for _, typ := range g.queue {
		fields, err := jsonFields(typ)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range fields {
			names = append(names, f.name)
		}
		v := reflect.New(typ).Elem()
		fill(v)
		b, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatal(err)
		}
		keys, err := topLevelKeys(b)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if strings.Join(names, " ") != strings.Join(keys, " ") {
			t.Errorf("%v: generator has members %v, encoding/json writes %v", typ, names, keys)
		}
	}
}

// topLevelKeys returns the member names of a JSON object in the order they are written.
func topLevelKeys(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, err
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}
