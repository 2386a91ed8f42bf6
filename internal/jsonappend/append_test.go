package jsonappend

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzString: what String writes is valid JSON that encoding/json decodes to the same
// string (with invalid UTF-8 replaced, as encoding/json's own encoder does).
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\n\r\t\x00\x1f", "é ü 中 😀", "\xff\xfe", "\u2028\u2029", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := String(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("String(%q) = %s: not JSON: %v", s, b, err)
		}
		want := s
		if !utf8.ValidString(s) {
			ref, _ := json.Marshal(s)
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
		}
		if got != want {
			t.Fatalf("String(%q) decodes to %q, want %q", s, got, want)
		}
	})
}

func TestHelpers(t *testing.T) {
	b := Strings(nil, nil)
	b = append(b, ' ')
	b = Strings(b, []string{"a", "b\""})
	b = append(b, ' ')
	b = StringMap(b, []string{"k", "z"}, map[string]string{"k": "v", "z": ""})
	b = append(b, ' ')
	b = Int(b, -3)
	b = append(b, ' ')
	b = Uint(b, 18446744073709551615)
	b = append(b, ' ')
	b = Bool(b, true)
	if want := `null ["a","b\""] {"k":"v","z":""} -3 18446744073709551615 true`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}
