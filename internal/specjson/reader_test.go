package specjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestReaderIntegers(t *testing.T) {
	for _, c := range []struct {
		in   string
		bits int
		want int64
		err  string
	}{
		{"0", 8, 0, ""},
		{"-0", 8, 0, ""},
		{"127", 8, 127, ""},
		{"128", 8, 0, "number 128 is out of range for int8"},
		{"-128", 8, -128, ""},
		{"-129", 8, 0, "out of range for int8"},
		{"9223372036854775807", 64, math.MaxInt64, ""},
		{"9223372036854775808", 64, 0, "out of range"},
		{"-9223372036854775808", 64, math.MinInt64, ""},
		{"99999999999999999999999", 64, 0, "out of range"},
		{"1.5", 64, 0, "number 1.5 is not an integer"},
		{"1E2", 64, 0, "not an integer"},
		{`"1"`, 64, 0, "expected int64, got a JSON string"},
		{"-", 64, 0, "unexpected end of input in number"},
		{"-x", 64, 0, "expected a digit after '-', found 'x'"},
		{"1.", 64, 0, "expected a digit after the decimal point"},
		{"1e+", 64, 0, "expected a digit in the exponent"},
	} {
		r := NewReader([]byte(c.in))
		got, err := r.Int64(c.bits)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Int64(%d) of %s: error %v, want %q", c.bits, c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Int64(%d) of %s = %d, %v; want %d", c.bits, c.in, got, err, c.want)
		}
	}

	for _, c := range []struct {
		in   string
		bits int
		want uint64
		err  string
	}{
		{"255", 8, 255, ""},
		{"256", 8, 0, "out of range for uint8"},
		{"18446744073709551615", 64, math.MaxUint64, ""},
		{"18446744073709551616", 64, 0, "out of range for uint64"},
		{"-0", 64, 0, "out of range"},
		{"-1", 32, 0, "out of range for uint32"},
		{"1e0", 32, 0, "not an integer"},
		{"null", 32, 0, "expected uint32, got null"},
	} {
		got, err := NewReader([]byte(c.in)).Uint64(c.bits)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Uint64(%d) of %s: error %v, want %q", c.bits, c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Uint64(%d) of %s = %d, %v; want %d", c.bits, c.in, got, err, c.want)
		}
	}
}

func TestReaderFloat(t *testing.T) {
	for _, c := range []struct {
		in   string
		bits int
		want float64
		err  string
	}{
		{"1.5e3", 64, 1500, ""},
		{"-0.25", 32, -0.25, ""},
		{"1e39", 32, 0, "out of range for float32"},
		{"1e400", 64, 0, "out of range for float64"},
		{"true", 64, 0, "expected float64, got a JSON boolean"},
	} {
		got, err := NewReader([]byte(c.in)).Float64(c.bits)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Float64(%d) of %s: error %v, want %q", c.bits, c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Float64(%d) of %s = %v, %v; want %v", c.bits, c.in, got, err, c.want)
		}
	}
}

// TestReaderWalk uses the Reader the way a hand-written decoder would.
func TestReaderWalk(t *testing.T) {
	in := []byte(` {"a\u0062c": [true, false, null, "x\ny"], "raw": {"k": [1, 2.5e1]}, "skip": [[{}]], "n": -7} `)
	r := NewReader(in)
	var log []string
	err := r.Object(func(key []byte) error {
		log = append(log, "key "+string(key))
		switch string(key) {
		case "abc":
			return r.Array(func() error {
				if r.Null() {
					log = append(log, "null")
					return nil
				}
				if r.Peek() == String {
					s, err := r.String()
					log = append(log, "string "+s)
					return err
				}
				b, err := r.Bool()
				if b {
					log = append(log, "true")
				} else {
					log = append(log, "false")
				}
				return err
			})
		case "raw":
			raw, err := r.Raw()
			log = append(log, "raw "+string(raw))
			return err
		case "n":
			n, err := r.Int64(64)
			if n != -7 {
				t.Errorf("n = %d", n)
			}
			return err
		}
		return r.Skip()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.End(); err != nil {
		t.Fatal(err)
	}
	want := "key abc|true|false|null|string x\ny|key raw|raw {\"k\": [1, 2.5e1]}|key skip|key n"
	if got := strings.Join(log, "|"); got != want {
		t.Errorf("walk:\n got %q\nwant %q", got, want)
	}
	if r.Offset() != len(in) {
		t.Errorf("Offset = %d, want %d", r.Offset(), len(in))
	}
}

func TestReaderCallbackMustConsume(t *testing.T) {
	r := NewReader([]byte(`{"a":1}`))
	err := r.Object(func([]byte) error { return nil })
	if !errors.Is(err, errNotConsumed) {
		t.Fatalf("error = %v, want errNotConsumed", err)
	}
}

func TestReaderMismatchDoesNotConsume(t *testing.T) {
	r := NewReader([]byte(`"s"`))
	if _, err := r.Bool(); err == nil {
		t.Fatal("Bool of a string succeeded")
	}
	if s, err := r.String(); err != nil || s != "s" {
		t.Fatalf("String after a mismatch = %q, %v", s, err)
	}
}

// TestMismatchOnBrokenScalar: a broken literal is a syntax error, not a null of the wrong type.
func TestMismatchOnBrokenScalar(t *testing.T) {
	for _, in := range []string{`nul`, `tru`, `"abc`, `-x`} {
		_, err := NewReader([]byte(in)).Uint64(8)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v, want a *SyntaxError", in, err)
		}
	}
}

func TestFoldEqual(t *testing.T) {
	pairs := [][2]string{
		{"uid", "UID"}, {"uid", "uId"}, {"uid", "uidx"}, {"", ""}, {"a", ""},
		{"\u212Aernel", "kernel"}, {"ſwap", "SWAP"}, {"ß", "SS"}, {"é", "É"}, {"\xff", "\xff"},
		{"hostname", "hostnamé"}, {"DNSSearchList", "dnssearchlist"}, {"a_b", "A_B"}, {"@", "`"},
	}
	for _, p := range pairs {
		want := bytes.EqualFold([]byte(p[0]), []byte(p[1]))
		if got := foldEqual([]byte(p[0]), p[1]); got != want {
			t.Errorf("foldEqual(%q, %q) = %v, bytes.EqualFold says %v", p[0], p[1], got, want)
		}
	}
	if i := foldIndex([]byte("AB"), []string{"x", "ab", "Ab"}); i != 1 {
		t.Errorf("foldIndex = %d, want the first match, 1", i)
	}
}

func FuzzFoldEqual(f *testing.F) {
	f.Add([]byte("\u212Aernel"), "kernel")
	f.Add([]byte("ſwap"), "swap")
	f.Fuzz(func(t *testing.T, key []byte, name string) {
		if got, want := foldEqual(key, name), bytes.EqualFold(key, []byte(name)); got != want {
			t.Fatalf("foldEqual(%q, %q) = %v, bytes.EqualFold says %v", key, name, got, want)
		}
	})
}

// FuzzValid checks the Reader accepts exactly the JSON that encoding/json accepts.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `[1,-2.5e+3,"a\u00e9\ud83d\ude00",true,false,null]`, `{"a":{"b":[]}}`, "\"\xff\"", `01`, `1.`, `[1,]`, `"\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := validate(data)
		if (err == nil) != json.Valid(data) {
			t.Fatalf("validate(%q) = %v, json.Valid = %v", data, err, json.Valid(data))
		}
	})
}

// FuzzString checks string decoding, escapes and invalid UTF-8 included, against encoding/json.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800\udc00"`, `"\ud800\ud800\udc00"`, "\"\xed\xa0\x80\"", `"\"\\\/\b\f\n\r\t"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want string
		jerr := json.Unmarshal(data, &want)
		r := NewReader(data)
		got, err := r.String()
		if err == nil {
			err = r.End()
		}
		if jerr == nil {
			if err != nil || got != want {
				t.Fatalf("String(%q) = %q, %v; encoding/json gives %q", data, got, err, want)
			}
		} else if err == nil {
			t.Fatalf("String(%q) = %q, but encoding/json rejects it: %v", data, got, jerr)
		}
	})
}
