package specjson

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit. It is matched, not merely similar, because a document
// that encoding/json rejects as too deep must be rejected here too.
const maxDepth = 10000

// Kind is the kind of the next JSON value, as told by its first byte.
type Kind uint8

const (
	Invalid Kind = iota // not the start of a JSON value, or the end of the input
	Null
	Bool
	Number
	String
	Array
	Object
)

// describe says what a value of this kind is, for a TypeError's Got.
func (k Kind) describe() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "a JSON boolean"
	case Number:
		return "a JSON number"
	case String:
		return "a JSON string"
	case Array:
		return "a JSON array"
	case Object:
		return "a JSON object"
	}
	return "no value"
}

var kindOf = func() (t [256]Kind) {
	t['n'] = Null
	t['t'], t['f'] = Bool, Bool
	t['-'] = Number
	for c := '0'; c <= '9'; c++ {
		t[c] = Number
	}
	t['"'] = String
	t['['] = Array
	t['{'] = Object
	return t
}()

// plain marks bytes that stand for themselves inside a string: no escape, no control character,
// no quote and no byte that might start invalid UTF-8.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Reader reads JSON values one at a time from a byte slice, checking syntax as it goes. Decoders
// call one method per value they expect; a method that finds another kind of value returns a
// *TypeError and consumes nothing, and malformed input gives a *SyntaxError. After an error the
// Reader's position is unspecified.
//
// Strings are decoded the way encoding/json decodes them, including replacing invalid UTF-8 and
// unpaired surrogates with U+FFFD.
type Reader struct {
	data  []byte
	src   string // data as a string, so that strings without escapes share one allocation
	pos   int
	depth int
	buf   []byte // scratch for strings with escapes
}

// NewReader returns a Reader over data. It copies data once into a string that the strings it
// returns are cut from, so a string kept after decoding keeps that copy alive.
func NewReader(data []byte) *Reader {
	return &Reader{data: data, src: string(data)}
}

// Offset returns the index of the next unread byte.
func (r *Reader) Offset() int { return r.pos }

// skipSpace advances past the whitespace that JSON allows between tokens.
func (r *Reader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// Peek returns the kind of the next value without consuming it.
func (r *Reader) Peek() Kind {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return Invalid
	}
	return kindOf[r.data[r.pos]]
}

// End checks that nothing but whitespace is left.
func (r *Reader) End() error {
	r.skipSpace()
	if r.pos < len(r.data) {
		return r.syntaxError(r.pos, "unexpected "+r.found(r.pos)+" after the top-level value")
	}
	return nil
}

// Null consumes a null literal if that is what comes next.
func (r *Reader) Null() bool {
	r.skipSpace()
	if len(r.data)-r.pos >= 4 && string(r.data[r.pos:r.pos+4]) == "null" {
		r.pos += 4
		return true
	}
	return false
}

// Bool reads true or false.
func (r *Reader) Bool() (bool, error) {
	r.skipSpace()
	if r.pos < len(r.data) {
		switch r.data[r.pos] {
		case 't':
			return true, r.literal("true")
		case 'f':
			return false, r.literal("false")
		}
	}
	return false, r.mismatch("bool")
}

// String reads a string.
func (r *Reader) String() (string, error) {
	r.skipSpace()
	if r.pos >= len(r.data) || r.data[r.pos] != '"' {
		return "", r.mismatch("string")
	}
	start, end, simple, err := r.scanString()
	if err != nil {
		return "", err
	}
	if simple {
		if r.src == "" {
			return string(r.data[start:end]), nil
		}
		return r.src[start:end], nil
	}
	r.buf = appendUnquoted(r.buf[:0], r.data[start:end])
	return string(r.buf), nil
}

// Int64 reads an integer that fits in a signed integer of the given size in bits. Fractions and
// exponents are type errors even when the value is whole ("1.0", "1e2"), as in encoding/json.
func (r *Reader) Int64(bits int) (int64, error) {
	tok, err := r.integer("int", bits)
	if err != nil {
		return 0, err
	}
	neg := tok[0] == '-'
	digits := tok
	if neg {
		digits = tok[1:]
	}
	limit := uint64(1)<<(bits-1) - 1
	if neg {
		limit++
	}
	n, ok := parseDigits(digits, limit)
	if !ok {
		return 0, r.outOfRange(tok, "int", bits)
	}
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
}

// Uint64 reads an integer that fits in an unsigned integer of the given size in bits. A minus sign
// is out of range even on zero, as strconv.ParseUint (and so encoding/json) has it.
func (r *Reader) Uint64(bits int) (uint64, error) {
	tok, err := r.integer("uint", bits)
	if err != nil {
		return 0, err
	}
	if tok[0] == '-' {
		return 0, r.outOfRange(tok, "uint", bits)
	}
	n, ok := parseDigits(tok, ^uint64(0)>>(64-bits))
	if !ok {
		return 0, r.outOfRange(tok, "uint", bits)
	}
	return n, nil
}

// Float64 reads a number as a float of the given size in bits (32 or 64).
func (r *Reader) Float64(bits int) (float64, error) {
	tok, err := r.number("float" + strconv.Itoa(bits))
	if err != nil {
		return 0, err
	}
	f, perr := strconv.ParseFloat(string(tok), bits)
	if perr != nil {
		return 0, r.typeError("float"+strconv.Itoa(bits), "number "+string(tok), "is out of range for float"+strconv.Itoa(bits), r.pos-len(tok))
	}
	return f, nil
}

// Object reads an object, calling fn for each member once its name and colon are read; fn must
// consume exactly one value, the member's (Skip it if the member is not wanted). key is the unquoted member name and is
// valid only until the next call on the Reader. null is not an object: callers that accept it check
// Null first.
func (r *Reader) Object(fn func(key []byte) error) error {
	r.skipSpace()
	if r.pos >= len(r.data) || r.data[r.pos] != '{' {
		return r.mismatch("object")
	}
	if err := r.enter(); err != nil {
		return err
	}
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == '}' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		key, err := r.key()
		if err != nil {
			return err
		}
		start := r.pos
		if err := fn(key); err != nil {
			return err
		}
		if r.pos == start {
			return errNotConsumed
		}
		r.skipSpace()
		if r.pos >= len(r.data) {
			return r.syntaxError(r.pos, "unexpected end of input in object, expected ',' or '}'")
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case '}':
			r.pos++
			r.depth--
			return nil
		default:
			return r.syntaxError(r.pos, "expected ',' or '}' after object member, found "+r.found(r.pos))
		}
	}
}

// Array reads an array, calling fn once per element; fn must consume exactly one value.
func (r *Reader) Array(fn func() error) error {
	r.skipSpace()
	if r.pos >= len(r.data) || r.data[r.pos] != '[' {
		return r.mismatch("array")
	}
	if err := r.enter(); err != nil {
		return err
	}
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		start := r.pos
		if err := fn(); err != nil {
			return err
		}
		if r.pos == start {
			return errNotConsumed
		}
		r.skipSpace()
		if r.pos >= len(r.data) {
			return r.syntaxError(r.pos, "unexpected end of input in array, expected ',' or ']'")
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case ']':
			r.pos++
			r.depth--
			return nil
		default:
			return r.syntaxError(r.pos, "expected ',' or ']' after array element, found "+r.found(r.pos))
		}
	}
}

// errNotConsumed reports a decoder bug (a callback that read nothing), which would otherwise show up
// as a baffling syntax error in the user's input.
var errNotConsumed = errors.New("specjson: Object or Array callback did not consume a value")

// Raw returns the exact bytes of the next value, after checking its syntax.
func (r *Reader) Raw() ([]byte, error) {
	r.skipSpace()
	start := r.pos
	if err := r.Skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}

// Skip consumes the next value, checking its syntax as thoroughly as decoding it would. It keeps
// its own stack instead of recursing so that a deeply nested unknown member costs no goroutine
// stack growth.
func (r *Reader) Skip() error {
	var open [64]byte
	stack := open[:0] // '{' or '[' for each container entered here
	for {
		r.skipSpace()
		if r.pos >= len(r.data) {
			return r.syntaxError(r.pos, "unexpected end of input, expected a value")
		}
		switch c := r.data[r.pos]; c {
		case '{', '[':
			if err := r.enter(); err != nil {
				return err
			}
			r.skipSpace()
			if r.pos < len(r.data) && r.data[r.pos] == c+2 { // '}' and ']' are two after '{' and '['
				r.pos++
				r.depth--
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if _, _, _, err := r.keyRaw(); err != nil {
					return err
				}
			}
			continue
		case '"':
			if _, _, _, err := r.scanString(); err != nil {
				return err
			}
		case 't':
			if err := r.literal("true"); err != nil {
				return err
			}
		case 'f':
			if err := r.literal("false"); err != nil {
				return err
			}
		case 'n':
			if err := r.literal("null"); err != nil {
				return err
			}
		default:
			if _, err := r.scanNumber(); err != nil {
				return err
			}
		}
		// A value is complete: close the containers it completes, or move on to the next element.
		for {
			if len(stack) == 0 {
				return nil
			}
			top := stack[len(stack)-1]
			r.skipSpace()
			if r.pos >= len(r.data) {
				return r.syntaxError(r.pos, "unexpected end of input in "+containerName(top)+", expected ',' or '"+string(top+2)+"'")
			}
			c := r.data[r.pos]
			if c == top+2 {
				r.pos++
				r.depth--
				stack = stack[:len(stack)-1]
				continue
			}
			if c != ',' {
				return r.syntaxError(r.pos, "expected ',' or '"+string(top+2)+"' after "+containerName(top)+" "+memberName(top)+", found "+r.found(r.pos))
			}
			r.pos++
			if top == '{' {
				if _, _, _, err := r.keyRaw(); err != nil {
					return err
				}
			}
			break
		}
	}
}

func containerName(open byte) string {
	if open == '{' {
		return "object"
	}
	return "array"
}

func memberName(open byte) string {
	if open == '{' {
		return "member"
	}
	return "element"
}

// enter consumes '{' or '[' and counts the nesting level.
func (r *Reader) enter() error {
	if r.depth >= maxDepth {
		return r.syntaxError(r.pos, "nesting exceeds the maximum depth of "+strconv.Itoa(maxDepth))
	}
	r.depth++
	r.pos++
	return nil
}

// key reads an object member's name and the colon after it.
func (r *Reader) key() ([]byte, error) {
	start, end, simple, err := r.keyRaw()
	if err != nil {
		return nil, err
	}
	if simple {
		return r.data[start:end], nil
	}
	r.buf = appendUnquoted(r.buf[:0], r.data[start:end])
	return r.buf, nil
}

// keyRaw reads a member name and the colon after it, returning the name's bounds in data.
func (r *Reader) keyRaw() (start, end int, simple bool, err error) {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return 0, 0, false, r.syntaxError(r.pos, "unexpected end of input in object, expected a member name")
	}
	if r.data[r.pos] != '"' {
		return 0, 0, false, r.syntaxError(r.pos, "expected a member name in double quotes, found "+r.found(r.pos))
	}
	start, end, simple, err = r.scanString()
	if err != nil {
		return 0, 0, false, err
	}
	r.skipSpace()
	if r.pos >= len(r.data) {
		return 0, 0, false, r.syntaxError(r.pos, "unexpected end of input in object, expected ':'")
	}
	if r.data[r.pos] != ':' {
		return 0, 0, false, r.syntaxError(r.pos, "expected ':' after member name, found "+r.found(r.pos))
	}
	r.pos++
	return start, end, simple, nil
}

// scanString consumes a string starting at r.pos (a '"'), checking its escapes, and returns the
// bounds of its contents. simple means the contents are the decoded string as they stand: no
// escapes and valid UTF-8.
func (r *Reader) scanString() (start, end int, simple bool, err error) {
	data := r.data
	i := r.pos + 1
	start = i
	simple = true
	ascii := true
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			return 0, 0, false, r.syntaxError(len(data), "unexpected end of input in string")
		}
		switch c := data[i]; {
		case c == '"':
			if !ascii && simple {
				simple = utf8.Valid(data[start:i])
			}
			r.pos = i + 1
			return start, i, simple, nil
		case c == '\\':
			simple = false
			if i+1 >= len(data) {
				return 0, 0, false, r.syntaxError(len(data), "unexpected end of input in string escape")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(data) {
						return 0, 0, false, r.syntaxError(len(data), "unexpected end of input in \\u escape")
					}
					if hexVal(data[j]) < 0 {
						return 0, 0, false, r.syntaxError(j, "invalid "+r.found(j)+" in \\u escape, expected a hexadecimal digit")
					}
				}
				i += 6
			default:
				return 0, 0, false, r.syntaxError(i+1, "invalid escape \\"+string(rune(data[i+1]))+" in string")
			}
		case c < 0x20:
			return 0, 0, false, r.syntaxError(i, "control character "+r.found(i)+" in string, which must be escaped")
		default: // a byte of a multi-byte sequence
			ascii = false
			i++
		}
	}
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the four hexadecimal digits that scanString has already checked.
func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// appendUnquoted appends the decoded contents of a string that scanString accepted. Invalid UTF-8
// becomes U+FFFD one byte at a time, and a \u escape of a surrogate that does not pair with the
// escape right after it becomes one U+FFFD, which is what encoding/json produces.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r1 := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r1) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(r1, hex4(s[i+2:i+6])); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
					r1 = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r1)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, s[i+1])
			}
			i += 2
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		rr, size := utf8.DecodeRune(s[i:])
		if rr == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// scanNumber consumes a number starting at r.pos and reports whether it has neither fraction nor
// exponent.
func (r *Reader) scanNumber() (isInt bool, err error) {
	data := r.data
	i := r.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return false, r.syntaxError(i, "unexpected end of input in number")
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	case i == r.pos:
		return false, r.syntaxError(i, "expected a value, found "+r.found(i))
	default:
		return false, r.syntaxError(i, "expected a digit after '-', found "+r.found(i))
	}
	isInt = true
	if i < len(data) && data[i] == '.' {
		isInt = false
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return false, r.syntaxError(i, "expected a digit after the decimal point, found "+r.found(i))
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		isInt = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return false, r.syntaxError(i, "expected a digit in the exponent, found "+r.found(i))
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	r.pos = i
	return isInt, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number consumes a number token, or reports what is there instead.
func (r *Reader) number(expected string) ([]byte, error) {
	r.skipSpace()
	if r.pos >= len(r.data) || kindOf[r.data[r.pos]] != Number {
		return nil, r.mismatch(expected)
	}
	start := r.pos
	if _, err := r.scanNumber(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}

// integer consumes a number token and checks it has no fraction or exponent.
func (r *Reader) integer(kind string, bits int) ([]byte, error) {
	if bits < 1 || bits > 64 {
		return nil, errors.New("specjson: integer size " + strconv.Itoa(bits) + " out of range")
	}
	r.skipSpace()
	if r.pos >= len(r.data) || kindOf[r.data[r.pos]] != Number {
		return nil, r.mismatch(kind + strconv.Itoa(bits))
	}
	start := r.pos
	isInt, err := r.scanNumber()
	if err != nil {
		return nil, err
	}
	tok := r.data[start:r.pos]
	if !isInt {
		return nil, r.typeError(kind+strconv.Itoa(bits), "number "+string(tok), "is not an integer", start)
	}
	return tok, nil
}

// parseDigits parses decimal digits, failing if the value exceeds limit.
func parseDigits(digits []byte, limit uint64) (uint64, bool) {
	var n uint64
	for _, c := range digits {
		d := uint64(c - '0')
		if d > limit || n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func (r *Reader) outOfRange(tok []byte, kind string, bits int) error {
	name := kind + strconv.Itoa(bits)
	return r.typeError(name, "number "+string(tok), "is out of range for "+name, r.pos-len(tok))
}

// literal consumes the literal word at r.pos.
func (r *Reader) literal(word string) error {
	for i := 0; i < len(word); i++ {
		p := r.pos + i
		if p >= len(r.data) {
			return r.syntaxError(p, "unexpected end of input in literal "+word)
		}
		if r.data[p] != word[i] {
			return r.syntaxError(p, "invalid "+r.found(p)+" in literal "+word)
		}
	}
	r.pos += len(word)
	return nil
}

// mismatch reports that the next value is not of the expected kind: a TypeError if it is a value
// at all, a SyntaxError if it is not. Scalars are checked in full, so that "nul" is reported as the
// syntax error it is rather than as a null of the wrong type; containers are not, because checking
// them could cost as much as decoding them, and Unmarshal re-checks the whole input on errors.
func (r *Reader) mismatch(expected string) error {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return r.syntaxError(r.pos, "unexpected end of input, expected a value")
	}
	k := kindOf[r.data[r.pos]]
	switch k {
	case Invalid:
		return r.syntaxError(r.pos, "expected a value, found "+r.found(r.pos))
	case Null, Bool, Number, String:
		save := r.pos
		if err := r.Skip(); err != nil {
			return err
		}
		r.pos = save
	}
	return r.typeError(expected, k.describe(), "", r.pos)
}

func (r *Reader) typeError(expected, got, reason string, offset int) error {
	line, _ := lineOf(r.data, offset)
	return &TypeError{Expected: expected, Got: got, Reason: reason, Offset: int64(offset), Line: line}
}

func (r *Reader) syntaxError(offset int, msg string) error {
	line, col := lineOf(r.data, offset)
	return &SyntaxError{Offset: int64(offset), Line: line, Column: col, Msg: msg}
}

// found describes the byte at offset for an error message.
func (r *Reader) found(offset int) string {
	if offset >= len(r.data) {
		return "end of input"
	}
	c, _ := utf8.DecodeRune(r.data[offset:])
	if c == utf8.RuneError {
		return "byte 0x" + strconv.FormatUint(uint64(r.data[offset]), 16)
	}
	return strconv.QuoteRune(c)
}
