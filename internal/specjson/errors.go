package specjson

import (
	"bytes"
	"strconv"
	"strings"
)

// SyntaxError reports input that is not JSON. Offset is the index of the offending byte (len(input)
// when the input ended too early); Line and Column (both from 1, Column counted in bytes) locate it
// for people, Offset for programs.
type SyntaxError struct {
	Offset int64
	Line   int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "line " + strconv.Itoa(e.Line) + " column " + strconv.Itoa(e.Column) +
		" (byte " + strconv.FormatInt(e.Offset, 10) + "): " + e.Msg
}

// TypeError reports valid JSON whose value does not fit the Go field it is meant for.
//
// Field is the member's path as the spec spells it, e.g. "process.user.uid", "mounts[2].options" or
// `linux.sysctl["net.ipv4.ip_forward"]`; it is empty when the whole document has the wrong type.
// Expected names the Go type ("uint32", "string", "object", "array"), Got what the input has
// ("a JSON string", "number 1.5"). Reason is set when the kinds agree but the value does not fit
// ("is not an integer", "is out of range for uint16"); Err is set when a value that this package
// hands to encoding/json (an interface{} field) failed there.
type TypeError struct {
	Field    string
	Expected string
	Got      string
	Reason   string
	Offset   int64
	Line     int
	Err      error
}

func (e *TypeError) Error() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	switch {
	case e.Got != "" && e.Reason != "":
		b.WriteString(e.Got)
		b.WriteByte(' ')
		b.WriteString(e.Reason)
	case e.Reason != "":
		b.WriteString(e.Reason)
	default:
		b.WriteString("expected ")
		b.WriteString(e.Expected)
		b.WriteString(", got ")
		b.WriteString(e.Got)
	}
	return b.String()
}

func (e *TypeError) Unwrap() error { return e.Err }

// withField puts a struct member's name in front of the path of a type error found inside its
// value. Paths are built on the way out of an error, not on the way in, so that decoding a valid
// document never formats one.
func withField(err error, name string) error {
	if err == nil {
		return nil
	}
	return prefixPath(err, name)
}

// withIndex is withField for an array element.
func withIndex(err error, i int) error {
	return prefixPath(err, "["+strconv.Itoa(i)+"]")
}

// withKey is withField for a map entry; the key is quoted because map keys such as sysctl names and
// annotations contain dots.
func withKey(err error, key string) error {
	return prefixPath(err, "["+strconv.Quote(key)+"]")
}

func prefixPath(err error, elem string) error {
	te, ok := err.(*TypeError)
	if !ok {
		return err
	}
	switch {
	case te.Field == "":
		te.Field = elem
	case te.Field[0] == '[':
		te.Field = elem + te.Field
	default:
		te.Field = elem + "." + te.Field
	}
	return te
}

// lineOf returns the 1-based line and byte column of offset in data.
func lineOf(data []byte, offset int) (line, column int) {
	offset = min(max(offset, 0), len(data))
	line = 1 + bytes.Count(data[:offset], []byte{'\n'})
	column = offset - (bytes.LastIndexByte(data[:offset], '\n') + 1) + 1
	return line, column
}
