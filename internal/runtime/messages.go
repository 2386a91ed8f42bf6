package runtime

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Message types on the sync socket. The constructor sends "usermap", "pid" and "error"; the container
// half sends "hooks", "warning", "ready" and "error"; the runtime half answers "usermap" and "hooks"
// with "ack", and sends "joined" (or "error") once the process is in its cgroups.
const (
	msgUsermap = "usermap"
	msgPid     = "pid"
	msgError   = "error"
	msgWarning = "warning"
	msgHooks   = "hooks"
	msgReady   = "ready"
	msgAck     = "ack"
	msgJoined  = "joined"
)

// cgroupTask names a tasks file by a directory descriptor and a path below it.
type cgroupTask struct {
	FD   int    `json:"fd"`
	Path string `json:"path"`
}

type message struct {
	Type    string          `json:"type"`
	Pid     int             `json:"pid,omitempty"`
	Error   string          `json:"error,omitempty"`
	Message string          `json:"message,omitempty"`
	Debug   bool            `json:"debug,omitempty"` // a warning only worth a debug line
	State   json.RawMessage `json:"state,omitempty"`
}

const (
	modeInit = "init"
	modeExec = "exec"
)

// initConfig is everything the container half needs, sent once the process is in its namespaces.
// The *FD fields are indices in the descriptors sent with it (SCM_RIGHTS) until the container half
// resolves them into its own descriptor numbers; -1 means none.
type initConfig struct {
	Mode          string            `json:"mode"`
	Spec          json.RawMessage   `json:"spec,omitempty"`    // init: config.json as validated
	Process       *specs.Process    `json:"process,omitempty"` // exec: the process to run
	Rootfs        string            `json:"rootfs,omitempty"`
	Bundle        string            `json:"bundle,omitempty"`
	NoPivot       bool              `json:"noPivot,omitempty"`
	NoNewKeyring  bool              `json:"noNewKeyring,omitempty"`
	MountNS       bool              `json:"mountNS,omitempty"`       // the container has a mount namespace (new or joined)
	MountNSJoined bool              `json:"mountNSJoined,omitempty"` // the mount namespace is joined by path
	SourceFDs     map[int]int       `json:"sourceFDs,omitempty"`     // mount index → detached clone of a bind source (user namespaces)
	CgroupNS      bool              `json:"cgroupNS,omitempty"`
	Cgroups       map[string]string `json:"cgroups,omitempty"`
	ConsoleFD     int               `json:"consoleFD"`
	FifoDirFD     int               `json:"fifoDirFD"`
	PreserveFDs   int               `json:"preserveFDs"`
	IDMapFDs      map[string]int    `json:"idmapFDs,omitempty"` // mount destination → user namespace descriptor
	Hooks         bool              `json:"hooks,omitempty"`
	SELinux       bool              `json:"selinux,omitempty"`
	Filter        []unix.SockFilter `json:"filter,omitempty"`
	FilterFlags   uint              `json:"filterFlags,omitempty"`
	FilterNotify  bool              `json:"filterNotify,omitempty"`
	// SeccompFD is a connection to linux.seccomp.listenerPath, made by the runtime half, over which the
	// container half sends the notification listener once it has one.
	SeccompFD       int    `json:"seccompFD"`
	SeccompMetadata string `json:"seccompMetadata,omitempty"`
	// ContainerState is the state handed to hooks run by the container half when no round trip
	// happens, and to a seccomp listener.
	ContainerState json.RawMessage `json:"containerState,omitempty"`

	// CgroupTasks are the v1 tasks files the container half's exec'ing thread writes itself into.
	CgroupTasks []cgroupTask `json:"cgroupTasks,omitempty"`

	// waitJoined puts the process in its cgroups (container half): it waits for the runtime's word
	// on what the runtime joins, joins the rest itself, and then unshares a new cgroup namespace.
	waitJoined func() error
}
