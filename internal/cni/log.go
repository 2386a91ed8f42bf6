package cni

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
)

type logKey struct{}

// logState lets a plugin's configuration (read after the logger is in the context) redirect or
// re-level the logger that travels in the context.
type logState struct {
	name   string
	level  slog.LevelVar
	out    io.Writer
	file   *os.File
	logger *slog.Logger
}

// withLog puts a logger in ctx configured from BERTH_CNI_LOG (a file; stderr when empty) and
// BERTH_CNI_LOG_LEVEL (debug, info, warn, error; warn when empty). stdout is never used: it
// carries only the result.
func withLog(ctx context.Context, name string) context.Context {
	st := &logState{name: name}
	configure(st, os.Getenv("BERTH_CNI_LOG"), os.Getenv("BERTH_CNI_LOG_LEVEL"))
	return context.WithValue(ctx, logKey{}, st)
}

func configureLog(ctx context.Context, file, level string) {
	st, ok := ctx.Value(logKey{}).(*logState)
	if !ok || (file == "" && level == "") {
		return
	}
	if file == "" && st.file != nil {
		file = st.file.Name()
	}
	configure(st, file, level)
}

func configure(st *logState, file, level string) {
	switch strings.ToLower(level) {
	case "debug":
		st.level.Set(slog.LevelDebug)
	case "info":
		st.level.Set(slog.LevelInfo)
	case "error":
		st.level.Set(slog.LevelError)
	case "warn", "warning", "":
		st.level.Set(slog.LevelWarn)
	}
	var out io.Writer = os.Stderr
	if file != "" {
		if st.file != nil && st.file.Name() == file {
			out = st.file
		} else if f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			if st.file != nil {
				st.file.Close()
			}
			st.file = f
			out = f
		}
	}
	st.out = out
	st.logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: &st.level})).With("plugin", st.name, "pid", os.Getpid())
}
