package mount

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	o, err := Parse([]string{"rbind", "ro", "nosuid", "rslave", "rnoexec", "rnoatime", "mode=755", "size=64k"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Bind() || !o.Recursive() || o.Flags != unix.MS_BIND|unix.MS_REC|unix.MS_RDONLY|unix.MS_NOSUID {
		t.Errorf("flags %#x", o.Flags)
	}
	if !reflect.DeepEqual(o.Propagation, []uintptr{unix.MS_SLAVE | unix.MS_REC}) {
		t.Errorf("propagation %v", o.Propagation)
	}
	if o.AttrSet != unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_NOATIME || o.AttrClr != unix.MOUNT_ATTR__ATIME {
		t.Errorf("attrs set %#x clr %#x", o.AttrSet, o.AttrClr)
	}
	if o.DataString() != "mode=755,size=64k" {
		t.Errorf("data %q", o.DataString())
	}
}

func TestLaterOptionsWin(t *testing.T) {
	o, err := Parse([]string{"ro", "rw", "nosuid", "suid", "rro", "rrw"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Flags != 0 || o.Cleared != unix.MS_RDONLY|unix.MS_NOSUID || o.AttrSet != 0 || o.AttrClr != unix.MOUNT_ATTR_RDONLY {
		t.Fatalf("flags %#x cleared %#x set %#x clr %#x", o.Flags, o.Cleared, o.AttrSet, o.AttrClr)
	}
}

func TestParseRejects(t *testing.T) {
	for _, bad := range [][]string{{""}, {"ro,nosuid"}, {"mode=7\x0055"}} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("rbind\x01ro\x01mode=755")
	f.Add("idmap\x01tmpcopyup\x01rstrictatime")
	f.Fuzz(func(t *testing.T, s string) {
		var opts []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == 1 {
				opts = append(opts, s[start:i])
				start = i + 1
			}
		}
		o, err := Parse(opts)
		if err != nil {
			return
		}
		if o.Flags&o.Cleared != 0 {
			t.Fatalf("a flag is both set and cleared: %#x %#x", o.Flags, o.Cleared)
		}
		if o.AttrSet&o.AttrClr&^unix.MOUNT_ATTR__ATIME != 0 {
			t.Fatalf("an attribute is both set and cleared: %#x %#x", o.AttrSet, o.AttrClr)
		}
	})
}
