package cni

import (
	"errors"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berth-dev/berth/internal/netns"
)

// Error classes. Plugins wrap them with %w; ToTypesError maps them to the spec's codes at the edge.
var (
	// ErrInvalidConfig: the network configuration is well-formed JSON but not valid (code 7).
	ErrInvalidConfig = errors.New("invalid network configuration")
	// ErrDecode: the configuration or a prevResult could not be decoded (code 6).
	ErrDecode = errors.New("cannot decode")
	// ErrUnsupportedField: a field holds a value this plugin does not support (code 2).
	ErrUnsupportedField = errors.New("unsupported field")
	// ErrUnknownContainer: the container's network namespace does not exist (code 3).
	ErrUnknownContainer = errors.New("container unknown or does not exist")
	// ErrEnv: a required CNI_* variable is missing or invalid (code 4).
	ErrEnv = errors.New("invalid environment variables")
	// ErrIO: reading or writing state failed (code 5).
	ErrIO = errors.New("I/O failure")
	// ErrTryAgain: a transient condition (a lock held too long, an exhausted range that DELs may
	// free); the runtime should retry later (code 11).
	ErrTryAgain = errors.New("try again later")
	// ErrNotAvailable: STATUS found the plugin unable to serve ADD (code 50).
	ErrNotAvailable = errors.New("plugin not available")
	// ErrExists: ADD found the interface or allocation already there (code CodeExists).
	ErrExists = errors.New("already exists")
	// ErrCheck: CHECK found the attachment not as ADD left it (code CodeCheckFailed).
	ErrCheck = errors.New("check failed")
)

// Plugin-specific codes (the spec reserves 0-99 for its own).
const (
	CodeExists      uint = 100
	CodeCheckFailed uint = 101
)

// ToTypesError maps err to the spec's error structure; nil stays nil and a *types.Error passes
// through unchanged.
func ToTypesError(err error) *types.Error {
	if err == nil {
		return nil
	}
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	code := types.ErrInternal
	msg := "internal error"
	switch {
	case errors.Is(err, ErrUnknownContainer), errors.Is(err, netns.ErrNotExist):
		code, msg = types.ErrUnknownContainer, ErrUnknownContainer.Error()
	case errors.Is(err, ErrDecode):
		code, msg = types.ErrDecodingFailure, "failed to decode content"
	case errors.Is(err, ErrUnsupportedField):
		code, msg = types.ErrUnsupportedField, ErrUnsupportedField.Error()
	case errors.Is(err, ErrInvalidConfig):
		code, msg = types.ErrInvalidNetworkConfig, ErrInvalidConfig.Error()
	case errors.Is(err, ErrEnv):
		code, msg = types.ErrInvalidEnvironmentVariables, ErrEnv.Error()
	case errors.Is(err, ErrTryAgain):
		code, msg = types.ErrTryAgainLater, ErrTryAgain.Error()
	case errors.Is(err, ErrNotAvailable):
		code, msg = types.ErrPluginNotAvailable, ErrNotAvailable.Error()
	case errors.Is(err, ErrIO):
		code, msg = types.ErrIOFailure, ErrIO.Error()
	case errors.Is(err, ErrExists):
		code, msg = CodeExists, ErrExists.Error()
	case errors.Is(err, ErrCheck):
		code, msg = CodeCheckFailed, ErrCheck.Error()
	}
	return types.NewError(code, msg, err.Error())
}
