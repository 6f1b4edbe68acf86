//go:build !linux

package testnet

import (
	"errors"
	"os"
)

// setns is Linux-only; elsewhere Require skips before any namespace is used.
func setns(*os.File) error { return errors.ErrUnsupported }
