package runtime

import (
	"os"
	"strings"
)

// LSMEnabled reports whether SELinux and AppArmor are active on this host.
func LSMEnabled() (selinux, apparmor bool) {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return selinuxEnabled(), err == nil && strings.TrimSpace(string(b)) == "Y"
}
