package specjson

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// The generated decoders are built from the helpers below: one per Go kind, each taking the
// address to decode into, and for containers the decoder of their element. Every helper has
// encoding/json's semantics for its kind; the comments say where those are not obvious.

// wordBits is the size of int, uint and uintptr, which the generated code cannot spell as a
// constant of its own without assuming a platform.
const wordBits = strconv.IntSize

// unmarshal decodes a whole document. A syntax error anywhere in the input is reported in
// preference to a type error found before it, because encoding/json checks the syntax of the
// whole input before decoding anything and callers (and the equivalence tests) rely on the class
// of error matching.
func unmarshal[T any](data []byte, v *T, decode func(*Reader, *T) error) error {
	if v == nil {
		return errNilTarget
	}
	r := Reader{data: data, src: string(data)}
	err := decode(&r, v)
	if err == nil {
		err = r.End()
	}
	if err == nil {
		return nil
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		if serr := validate(data); serr != nil {
			return serr
		}
	}
	return err
}

var errNilTarget = errors.New("specjson: decoding into a nil pointer")

// validate checks that data is one JSON value and nothing else.
func validate(data []byte) error {
	r := Reader{data: data}
	if err := r.Skip(); err != nil {
		return err
	}
	return r.End()
}

// A JSON null leaves non-pointer scalars alone, as it does in encoding/json.

func decodeString[T ~string](r *Reader, p *T) error {
	if r.Null() {
		return nil
	}
	s, err := r.String()
	if err != nil {
		return err
	}
	*p = T(s)
	return nil
}

func decodeBool[T ~bool](r *Reader, p *T) error {
	if r.Null() {
		return nil
	}
	b, err := r.Bool()
	if err != nil {
		return err
	}
	*p = T(b)
	return nil
}

type signed interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64
}

type unsigned interface {
	~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

func decodeInt[T signed](r *Reader, p *T, bits int) error {
	if r.Null() {
		return nil
	}
	n, err := r.Int64(bits)
	if err != nil {
		return err
	}
	*p = T(n)
	return nil
}

func decodeUint[T unsigned](r *Reader, p *T, bits int) error {
	if r.Null() {
		return nil
	}
	n, err := r.Uint64(bits)
	if err != nil {
		return err
	}
	*p = T(n)
	return nil
}

// decodePtr reuses an existing pointee, so that a repeated member merges into the first one's
// value as encoding/json does.
func decodePtr[T any](r *Reader, p **T, elem func(*Reader, *T) error) error {
	if r.Null() {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = new(T)
	}
	return elem(r, *p)
}

// decodeSlice decodes element i into the existing slice's backing array while i is below its
// capacity, without zeroing it first: encoding/json does the same, so a repeated member such as
// two "mounts" arrays merges the second array's objects into the first one's.
func decodeSlice[T any](r *Reader, p *[]T, elem func(*Reader, *T) error) error {
	if r.Null() {
		*p = nil
		return nil
	}
	s := (*p)[:0]
	err := r.Array(func() error {
		switch {
		case len(s) < cap(s):
			s = s[:len(s)+1]
		case cap(s) == 0:
			// Most arrays in a spec are short lists (options, capabilities, names); starting
			// at four saves the reallocations at one and two. Capacity is not part of the
			// result: what lies past the length is only ever what an earlier array in the same
			// document wrote there, and growth keeps it whatever the policy.
			s = make([]T, 1, 4)
		default:
			var zero T
			s = append(s, zero)
		}
		if err := elem(r, &s[len(s)-1]); err != nil {
			return withIndex(err, len(s)-1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(s) == 0 {
		s = []T{} // [] decodes to an empty slice, not nil
	}
	*p = s
	return nil
}

// decodeMap adds to an existing map, and decodes each value from zero rather than into the entry
// it replaces.
func decodeMap[K ~string, V any](r *Reader, p *map[K]V, elem func(*Reader, *V) error) error {
	if r.Null() {
		*p = nil
		return nil
	}
	if r.Peek() != Object {
		return r.mismatch("object")
	}
	if *p == nil {
		*p = make(map[K]V)
	}
	m := *p
	return r.Object(func(key []byte) error {
		k := K(key)
		var e V
		if err := elem(r, &e); err != nil {
			return withKey(err, string(k))
		}
		m[k] = e
		return nil
	})
}

// decodeJSON hands one value to encoding/json: for interface{} members, whose decoded form is
// encoding/json's by definition, and for any type with its own UnmarshalJSON or UnmarshalText.
// None of them is on a Linux container's path.
func decodeJSON[T any](r *Reader, p *T) error {
	r.skipSpace()
	start := r.pos
	raw, err := r.Raw()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, p); err != nil {
		line, _ := lineOf(r.data, start)
		return &TypeError{Reason: err.Error(), Offset: int64(start), Line: line, Err: err}
	}
	return nil
}

// foldIndex returns the index of the first name that key equals under Unicode simple case folding,
// or -1. It is the fallback after an exact match; "first" follows field order, which is how
// encoding/json breaks ties between names that fold alike.
func foldIndex(key []byte, names []string) int {
	for i, name := range names {
		if foldEqual(key, name) {
			return i
		}
	}
	return -1
}

// foldEqual reports whether key and name are equal under simple case folding, the same relation
// as bytes.EqualFold and encoding/json's folded-name lookup: "UID" matches "uid", and so does the
// Kelvin sign for a "k" and the long s for an "s".
func foldEqual(key []byte, name string) bool {
	for len(key) > 0 && len(name) > 0 {
		a, b := key[0], name[0]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if upperASCII(a) != upperASCII(b) {
				return false
			}
			key, name = key[1:], name[1:]
			continue
		}
		ra, na := utf8.DecodeRune(key)
		rb, nb := utf8.DecodeRuneInString(name)
		if ra != rb && foldRune(ra) != foldRune(rb) {
			return false
		}
		key, name = key[na:], name[nb:]
	}
	return len(key) == 0 && len(name) == 0
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// foldRune returns the smallest rune of r's case-folding orbit, which stands for the whole orbit.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}
