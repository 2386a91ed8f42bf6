// Package signals parses signal names and numbers the way runc's kill command accepts them: "KILL",
// "SIGKILL", "9", "RTMIN+3". It owns nothing else; forwarding signals to containers lives in the runtime.
package signals
